// The one place that builds a Docker Engine API client.
import Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { ToolError } from "../kernel/errors.js";

export function dockerClient(config: Pick<Config, "dockerHost">): Docker {
  const host = config.dockerHost;
  if (!host) return new Docker({ socketPath: "/var/run/docker.sock" });
  if (host.startsWith("unix://")) return new Docker({ socketPath: host.slice("unix://".length) });
  const url = new URL(host.replace(/^tcp:/, "http:"));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) });
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
