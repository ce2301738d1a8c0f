// The one place that builds a Docker Engine API client: unix://, tcp:// and ssh:// hosts.
import { Agent, type AgentOptions } from "node:http";
import type { Duplex } from "node:stream";
import Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { ToolError, UsageError } from "../kernel/errors.js";
import { openStdioTunnel } from "./exec.js";

export function dockerClient(config: Pick<Config, "dockerHost"> & { sshOpts?: string[] }): Docker {
  const host = config.dockerHost;
  if (!host) return new Docker({ socketPath: "/var/run/docker.sock" });
  if (host.startsWith("unix://")) return new Docker({ socketPath: host.slice("unix://".length) });
  if (host.startsWith("ssh://")) {
    return new Docker({
      protocol: "http",
      host: "docker",
      agent: new SshDialAgent(sshArgv(host, config.sshOpts ?? [])),
    } as Docker.DockerOptions);
  }
  const url = new URL(host.replace(/^tcp:/, "http:"));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) });
}

/**
 * The ssh command that reaches the engine behind an ssh:// host, as the docker CLI does it: the
 * system `ssh` (so ~/.ssh/config, known_hosts and the agent apply; an unknown host key fails
 * instead of being trusted) running `docker system dial-stdio` on the remote.
 */
export function sshArgv(host: string, extra: string[]): string[] {
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    throw new UsageError(
      `DOCKER_HOST=${host} is not a valid ssh:// URL`,
      "use ssh://[user@]host[:port]",
    );
  }
  if (!url.hostname || url.hostname.startsWith("-") || (url.pathname && url.pathname !== "/"))
    throw new UsageError(
      `DOCKER_HOST=${host} is not a valid ssh:// URL`,
      "use ssh://[user@]host[:port]",
    );
  return [
    "ssh",
    ...["-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"],
    ...(url.username ? ["-l", decodeURIComponent(url.username)] : []),
    ...(url.port ? ["-p", url.port] : []),
    ...extra,
    "--",
    url.hostname,
    ...["docker", "system", "dial-stdio"],
  ];
}

/** An HTTP agent whose every connection is a fresh `ssh … docker system dial-stdio` tunnel. */
class SshDialAgent extends Agent {
  constructor(
    private readonly argv: string[],
    opts?: AgentOptions,
  ) {
    super({ keepAlive: false, ...opts });
  }

  override createConnection(): Duplex {
    return openStdioTunnel(this.argv);
  }
}

/** Throws a ToolError with the fix when no engine answers. */
export async function assertDockerReachable(docker: Docker): Promise<string> {
  try {
    const v = await docker.version();
    return `${v.Version} (API ${v.ApiVersion})`;
  } catch (err) {
    throw new ToolError(
      `Docker engine not reachable: ${(err as Error).message}`,
      "start it with `make bootstrap` (installs Debian's docker.io and starts dockerd) or set DOCKER_HOST",
      { cause: err },
    );
  }
}
