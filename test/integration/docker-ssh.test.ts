// DOCKER_HOST=ssh://: iac's own Docker calls and Terraform's provider both reach the engine
// through a real sshd on loopback (Debian's openssh-server, installed by bootstrap), the way a
// user reaches a remote manager: the system ssh with its config, known_hosts and keys.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile, readFile, chmod } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerClient } from "../../src/platform/docker.js";
import {
  docker,
  HELLO_MAIN,
  startE2eProject,
  startFixtures,
  type E2eFixtures,
  type E2eProject,
} from "../helpers/e2e-project.js";

const run = promisify(execFile);
const SSHD = "/usr/sbin/sshd";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

let dir: string;
let port: number;
let sshd: ChildProcess | undefined;
let sshConfig: string;
let fixtures: E2eFixtures | undefined;
let p: E2eProject | undefined;
/** Sessions sshd accepted (its -e log): proof that the calls really went through it. */
let accepted = 0;

beforeAll(async () => {
  if (!existsSync(SSHD))
    throw new Error(
      `${SSHD} is missing: run \`make bootstrap\` (installs Debian's openssh-server)`,
    );
  dir = await mkdtemp(path.join(tmpdir(), "iac-ssh-"));
  port = await freePort();
  for (const key of ["host_key", "client_key"])
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, key)]);
  await writeFile(
    path.join(dir, "authorized_keys"),
    await readFile(path.join(dir, "client_key.pub")),
  );
  await chmod(path.join(dir, "authorized_keys"), 0o600);
  const hostKey = (await readFile(path.join(dir, "host_key.pub"), "utf8")).trim();
  await writeFile(path.join(dir, "known_hosts"), `[127.0.0.1]:${port} ${hostKey}\n`);
  await writeFile(
    path.join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${path.join(dir, "host_key")}`,
      `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `PidFile ${path.join(dir, "sshd.pid")}`,
      "",
    ].join("\n"),
  );
  sshConfig = path.join(dir, "ssh_config");
  await writeFile(
    sshConfig,
    [
      "Host 127.0.0.1",
      `  IdentityFile ${path.join(dir, "client_key")}`,
      `  UserKnownHostsFile ${path.join(dir, "known_hosts")}`,
      "  StrictHostKeyChecking yes",
      "",
    ].join("\n"),
  );
  await run("mkdir", ["-p", "/run/sshd"]); // sshd's privilege-separation directory
  // -D: stays in the foreground, so killing it in afterAll leaves nothing behind.
  sshd = spawn(SSHD, ["-D", "-e", "-f", path.join(dir, "sshd_config")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  sshd.stderr!.on("data", (d: Buffer) => {
    accepted += (d.toString().match(/Accepted publickey/g) ?? []).length;
  });
  for (let i = 0; i < 50; i++) {
    const up = await run(
      "ssh",
      ["-F", sshConfig, "-p", String(port), "-o", "BatchMode=yes"].concat([
        "root@127.0.0.1",
        "true",
      ]),
    ).then(
      () => true,
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`sshd on 127.0.0.1:${port} did not accept the test key within 10 s`);
}, 60_000);

afterAll(async () => {
  await p?.cleanup();
  await fixtures?.close();
  sshd?.kill("SIGTERM");
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe("DOCKER_HOST=ssh:// (a real sshd on loopback)", () => {
  it("iac's Docker client tunnels through the system ssh and refuses an unknown host key", async () => {
    const host = `ssh://root@127.0.0.1:${port}`;
    const overSsh = dockerClient({ dockerHost: host, sshOpts: ["-F", sshConfig] });
    expect((await overSsh.version()).Version).toBe((await docker.version()).Version);
    expect((await overSsh.info()).ID).toBe((await docker.info()).ID);

    // Without the config, the host key is unknown: BatchMode ssh fails and says why.
    const stranger = dockerClient({ dockerHost: host, sshOpts: [] });
    await expect(stranger.version()).rejects.toThrow(/Host key verification failed/);
  });

  it("deploy, health and destroy run over ssh: Terraform's provider uses the same ssh options", async () => {
    fixtures = await startFixtures({ "acme/ssh-hello": HELLO_MAIN });
    p = await startE2eProject(fixtures, {
      prefix: "ssh",
      env: {
        DOCKER_HOST: `ssh://root@127.0.0.1:${port}`,
        IAC_SSH_OPTS: `-F ${sshConfig}`,
      },
    });
    const file = await p.reposFile("repos.yaml", "- slug: gh:acme/ssh-hello#main\n  name: hello\n");
    const before = accepted;
    const deployed = await p.iac("deploy", "--file", file, "--output", "json");
    const doc = JSON.parse(deployed.stdout) as { services: { name: string; status: string }[] };
    expect(doc.services).toEqual([expect.objectContaining({ name: "hello", status: "SERVING" })]);
    expect(await p.containers()).not.toHaveLength(0);
    // iac's own calls and terraform's provider each opened sessions through sshd.
    expect(accepted - before).toBeGreaterThanOrEqual(2);

    const health = await p.iac("health", "--output", "json");
    expect(JSON.parse(health.stdout).services[0].status).toBe("SERVING");

    await p.iac("destroy", "--yes");
    expect(await p.containers(true)).toHaveLength(0);
  }, 300_000);
});
