import { describe, expect, it } from "vitest";
import { sshArgv } from "../../src/platform/docker.js";
import { UsageError } from "../../src/kernel/errors.js";

describe("ssh:// DOCKER_HOST: the ssh argv", () => {
  it("maps user and port to options, ends options before the host, runs dial-stdio", () => {
    expect(sshArgv("ssh://ops@manager.example:2222", ["-F", "/etc/iac/ssh_config"])).toEqual([
      ...["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"],
      ...["-l", "ops", "-p", "2222", "-F", "/etc/iac/ssh_config"],
      ...["--", "manager.example", "docker", "system", "dial-stdio"],
    ]);
    expect(sshArgv("ssh://manager", [])).toEqual([
      ...["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"],
      ...["--", "manager", "docker", "system", "dial-stdio"],
    ]);
  });

  it.each(["ssh://-oProxyCommand=touch%20x", "ssh://host/path", "ssh://"])(
    "refuses %s with how to write it",
    (host) => {
      expect(() => sshArgv(host, [])).toThrow(UsageError);
      expect(() => sshArgv(host, [])).toThrow(/not a valid ssh:\/\/ URL/);
    },
  );
});
