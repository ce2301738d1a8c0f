// Docker resources carrying a project's labels are the truth about what runs; terraform's state
// is what terraform knows. An interrupted apply (or a lost state) leaves resources outside the
// state, and every later apply then fails on "name already in use". Before apply and destroy
// they are reconciled: containers removed (terraform creates them again from the same spec).
// Networks are never imported (they live outside project state); an unused one an earlier
// version created for the project is removed. Each one is named.
import type { Config } from "../kernel/config.js";
import { dockerClient } from "../platform/docker.js";
import * as tf from "./terraform.js";

const APP_PORT = 15000;

/** Host ports of the project's running app containers (service -> port), from Docker. */
export async function runningServices(
  config: Config,
  project: string,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const containers = await dockerClient(config).listContainers({
    all: true,
    filters: { label: [`io.iac.project=${project}`, "io.iac.role=app"] },
  });
  for (const c of containers) {
    const service = c.Labels["io.iac.service"];
    const port = c.Ports.find((p) => p.PrivatePort === APP_PORT && p.PublicPort)?.PublicPort;
    if (service && port) out[service] = port;
  }
  return out;
}

/** Reconciles labelled resources missing from the state; returns one line per action. */
export async function reconcile(
  config: Config,
  project: string,
  run: tf.TerraformRun,
): Promise<string[]> {
  const docker = dockerClient(config);
  const label = `io.iac.project=${project}`;
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  const networks = await docker.listNetworks({ filters: { label: [label] } });
  if (containers.length === 0 && networks.length === 0) return [];
  const known = tf.stateIds(run.dir);
  const notes: string[] = [];
  const why = `carries project ${project}'s labels but is not in terraform state (an interrupted apply or a lost state)`;
  // Sidecars first: they share the app's network namespace.
  const ordered = [...containers].sort((a, b) =>
    a.Labels["io.iac.role"] === "sidecar" ? -1 : b.Labels["io.iac.role"] === "sidecar" ? 1 : 0,
  );
  for (const c of ordered) {
    if (known.has(c.Id)) continue;
    const name = c.Names[0]?.replace(/^\//, "") ?? c.Id.slice(0, 12);
    await docker.getContainer(c.Id).remove({ force: true });
    notes.push(`container ${name} ${why}: removed (terraform creates it again)`);
  }
  // Networks live outside project state now (shared, see operations/network.ts): a network an
  // earlier version created for this project is never imported. The one this deploy uses stays;
  // another one goes when nothing uses it any more.
  for (const n of networks) {
    if (n.Name === config.network) continue;
    const info = (await docker.getNetwork(n.Id).inspect()) as {
      Containers?: Record<string, unknown>;
    };
    const users = Object.keys(info.Containers ?? {}).length;
    if (users === 0) {
      await docker.getNetwork(n.Id).remove();
      notes.push(`network ${n.Name} of an earlier version of project ${project}: removed (unused)`);
    } else {
      notes.push(
        `network ${n.Name} of an earlier version of project ${project}: left in place (${users} containers still attached)`,
      );
    }
  }
  return notes;
}
