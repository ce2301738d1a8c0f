// The shared Docker network (iacnet by default). Projects share it: it is created here, once,
// outside any project's Terraform state (the module reads it as a data source), and removed
// only when the last container on it is gone. Isolation between projects is by mTLS identity.
import type { Config } from "../kernel/config.js";
import { errorMessage } from "../kernel/errors.js";
import { dockerClient } from "../platform/docker.js";

/** Labels of a network the control plane created and may remove once it is unused. */
export const SHARED_NETWORK_LABELS = { "io.iac.shared": "true", "io.iac.managed-by": "iac" };

function isConflict(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 409;
}

/** Creations in flight in this process, per engine and name (see ensureNetwork). */
const creating = new Map<string, Promise<{ created: boolean }>>();

/**
 * Creates the network unless it exists (created by us, an earlier version, or the user).
 * Concurrent calls in one process (the admin API runs deploys of several projects at once)
 * share one creation: Docker's CheckDuplicate is best effort, and two racing creates made two
 * networks of one name, which then neither `docker network rm <name>` nor terraform could tell apart.
 */
export function ensureNetwork(
  config: Pick<Config, "dockerHost">,
  name: string,
): Promise<{ created: boolean }> {
  const key = `${config.dockerHost ?? ""}\0${name}`;
  const running = creating.get(key);
  if (running) return running.then(() => ({ created: false }));
  const p = createNetworkOnce(config, name).finally(() => creating.delete(key));
  creating.set(key, p);
  return p;
}

async function createNetworkOnce(
  config: Pick<Config, "dockerHost">,
  name: string,
): Promise<{ created: boolean }> {
  const docker = dockerClient(config);
  const existing = await docker.listNetworks({ filters: { name: [name] } });
  if (existing.some((n) => n.Name === name)) return { created: false };
  try {
    await docker.createNetwork({
      Name: name,
      Driver: "bridge",
      CheckDuplicate: true,
      Labels: SHARED_NETWORK_LABELS,
    });
    return { created: true };
  } catch (err) {
    if (isConflict(err)) return { created: false }; // another deploy created it just now
    throw err;
  }
}

/**
 * Removes `name` when nothing is attached and we own it: created as shared by the control
 * plane, or labelled with `project` by an earlier version (then it was that project's own).
 * Returns the removed network's name, or undefined when it stays.
 */
export async function removeNetworkIfUnused(
  config: Pick<Config, "dockerHost">,
  name: string,
  project: string,
): Promise<string | undefined> {
  const docker = dockerClient(config);
  let info: { Name: string; Labels?: Record<string, string>; Containers?: Record<string, unknown> };
  try {
    info = (await docker.getNetwork(name).inspect()) as typeof info;
  } catch {
    return undefined; // already gone
  }
  const labels = info.Labels ?? {};
  const ours = labels["io.iac.shared"] === "true" || labels["io.iac.project"] === project;
  if (!ours || Object.keys(info.Containers ?? {}).length > 0) return undefined;
  try {
    await docker.getNetwork(name).remove();
    return info.Name;
  } catch (err) {
    // A deploy attached a container in between: it stays (the next destroy removes it).
    if (/active endpoints|in use|No such network|not found/i.test(errorMessage(err))) {
      return undefined;
    }
    throw err;
  }
}
