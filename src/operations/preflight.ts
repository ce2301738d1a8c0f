// Checks before any work starts: unique service names, a network this project may use, the
// sidecar image present locally. Each fails with a UsageError/ToolError saying what to do.
import type { Config } from "../kernel/config.js";
import { dockerClient } from "../platform/docker.js";
import { ToolError, UsageError } from "../kernel/errors.js";
import type { ServiceSpec } from "../kernel/types.js";

export function assertUniqueNames(services: ServiceSpec[]): void {
  const seen = new Map<string, string>();
  for (const s of services) {
    const other = seen.get(s.name);
    if (other) {
      throw new UsageError(
        `two services are named '${s.name}' (${other} and ${s.slug.raw})`,
        "give one of them a distinct `name:` in the repos file",
      );
    }
    seen.set(s.name, s.slug.raw);
  }
}

export async function assertNetworkUsable(config: Config, project: string): Promise<void> {
  const docker = dockerClient(config);
  const networks = await docker.listNetworks({ filters: { name: [config.network] } });
  const existing = networks.find((n) => n.Name === config.network);
  const owner = existing?.Labels?.["io.iac.project"];
  if (existing && owner !== project) {
    throw new UsageError(
      `Docker network '${config.network}' already exists and belongs to ${owner ? `project '${owner}'` : "something else"}`,
      "deploy with another network (--network or IAC_NETWORK), or destroy that project first",
    );
  }
}

export async function assertSidecarImage(config: Config): Promise<void> {
  if (config.sidecar !== "envoy") return;
  try {
    await dockerClient(config).getImage(config.envoyImage).inspect();
  } catch {
    throw new ToolError(
      `Envoy image '${config.envoyImage}' is not present locally`,
      "`docker pull` it (or load it from a tarball) and retry, set IAC_ENVOY_IMAGE to one you have, " +
        "or deploy without sidecars: IAC_SIDECAR=none (the runner then serves mTLS itself)",
    );
  }
}
