// `iac destroy`: terraform destroy, then ALWAYS a sweep of everything labelled with the project
// that Terraform did not remove (labels are the source of truth), also when terraform failed or
// was interrupted; the failure is reported after the sweep. Then the shared network goes when
// this was the last project on it.
import { rm } from "node:fs/promises";
import type { Config } from "../kernel/config.js";
import { IacError, errorMessage } from "../kernel/errors.js";
import { InterruptedError } from "../platform/interrupt.js";
import { dockerClient } from "../platform/docker.js";
import { type EventSink, logEvent, noopSink, stageEvent } from "../kernel/events.js";
import { projectDir, readStackVars, tfvarsPath } from "../stack/tfvars.js";
import * as tf from "../stack/terraform.js";
import { unknownProject } from "./known-projects.js";
import { ensureNetwork, removeNetworkIfUnused } from "./network.js";
import { prepareState, withProjectLock } from "./project.js";
import { destroySwarm } from "./swarm-destroy.js";
import { fastDestroy, fastDestroyPlan } from "./destroy-fast.js";

export async function destroy(
  config: Config,
  project: string,
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
  hardSignal?: AbortSignal,
): Promise<{ removed: string[] }> {
  if (config.target === "swarm") return destroySwarm(config, project, onEvent);
  return withProjectLock(config, project, "destroy", async (dir) => {
    const removed: string[] = [];
    const vars = await readStackVars(dir);
    let failure: unknown;
    // The network the project was deployed on (it may differ from today's --network).
    const network = vars?.network_name ?? config.network;
    const docker = dockerClient(config);
    const label = `io.iac.project=${project}`;
    const fast = vars && tf.hasState(dir) ? await fastDestroyPlan(dir) : undefined;
    if (fast?.fast) {
      onEvent(
        stageEvent(
          "destroy",
          undefined,
          `removing ${fast.containers.length} container(s) (project ${project}; terraform not needed)`,
        ),
      );
      const labelled = (
        await docker.listContainers({ all: true, filters: { label: [label] } })
      ).map((c) => ({ id: c.Id, name: c.Names[0]?.replace(/^\//, "") ?? c.Id }));
      try {
        removed.push(...(await fastDestroy(config, dir, fast, labelled, onEvent, signal)));
      } catch (err) {
        failure = err;
        onEvent(logEvent("pipeline", `${errorMessage(err).split("\n")[0]}: sweeping by label`));
      }
    } else if (vars && tf.hasState(dir)) {
      if (fast) onEvent(logEvent("pipeline", `terraform destroy: ${fast.reason}`));
      onEvent(stageEvent("destroy", undefined, `terraform destroy (project ${project})`));
      const run: tf.TerraformRun = {
        config,
        dir,
        signal,
        hardSignal,
        onLine: (line) => onEvent(logEvent("terraform", line)),
      };
      try {
        await ensureNetwork(config, network); // the module reads it; gone only if removed by hand
        // Orphans outside the state would keep the network busy until terraform times out.
        await prepareState(config, project, run, onEvent);
        await tf.destroy(run);
        removed.push(...Object.keys(vars.services).map((s) => `${project}-${s}`));
      } catch (err) {
        failure = err;
        onEvent(logEvent("pipeline", `${errorMessage(err).split("\n")[0]}: sweeping by label`));
      }
    }
    // Sweep anything labelled with this project that terraform did not remove.
    for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) {
      await docker.getContainer(c.Id).remove({ force: true });
      const name = c.Names[0]?.replace(/^\//, "") ?? c.Id;
      if (!removed.includes(name)) removed.push(name);
      onEvent(logEvent("pipeline", `removed container ${name}`));
    }
    // The shared network goes with the last project on it; a network an earlier version
    // created for this project alone (labelled with it) goes once nothing uses it.
    const legacy = await docker.listNetworks({ filters: { label: [label] } });
    for (const name of new Set([network, ...legacy.map((n) => n.Name)])) {
      const gone = await removeNetworkIfUnused(config, name, project);
      if (gone) {
        removed.push(`network ${gone}`);
        onEvent(logEvent("pipeline", `removed network ${gone} (no project uses it any more)`));
      } else if (name === network) {
        onEvent(logEvent("pipeline", `network ${name} stays (shared with other projects)`));
      }
    }
    if (failure) {
      const swept = removed.length ? removed.join(", ") : "nothing left to remove";
      if (failure instanceof InterruptedError)
        throw new InterruptedError(failure.during, failure.signal, `swept: ${swept}`);
      throw new IacError(
        `${errorMessage(failure)}\nswept the resources labelled io.iac.project=${project} anyway: ${swept}`,
        failure instanceof IacError ? failure.hint : undefined,
        { cause: failure },
      );
    }
    await rm(tfvarsPath(dir), { force: true });
    onEvent(stageEvent("done", undefined, `destroyed project ${project}`));
    return { removed };
  });
}

/** What `iac destroy` would remove: the project's containers (by label) and unused networks. */
export interface DestroyTargets {
  project: string;
  containers: string[];
  networks: string[];
  /** The network the project is on when it stays (other projects use it, or it is not ours). */
  keptNetwork?: string;
  /** Services in the project's state (what Terraform manages). */
  services: string[];
}

/**
 * Lists what destroy would remove; an unknown project (no state, nothing labelled) is a
 * NotFoundError naming the known ones, and nothing is created for it.
 */
export async function destroyTargets(config: Config, project: string): Promise<DestroyTargets> {
  const label = `io.iac.project=${project}`;
  const docker = dockerClient(config);
  const vars = await readStackVars(projectDir(config, project));
  const containers = (await docker.listContainers({ all: true, filters: { label: [label] } }))
    .map((c) => c.Names[0]?.replace(/^\//, "") ?? c.Id)
    .sort();
  const legacy = (await docker.listNetworks({ filters: { label: [label] } })).map((n) => n.Name);
  if (!vars && containers.length === 0 && legacy.length === 0)
    throw await unknownProject(config, project, "destroy");
  // The shared network goes too when only this project's containers are on it.
  const shared = vars?.network_name ?? config.network;
  const networks = [...legacy];
  let keptNetwork: string | undefined;
  const info = (await docker
    .getNetwork(shared)
    .inspect()
    .catch(() => undefined)) as
    { Labels?: Record<string, string>; Containers?: Record<string, { Name?: string }> } | undefined;
  if (info && !legacy.includes(shared)) {
    const ours = info.Labels?.["io.iac.shared"] === "true";
    const others = Object.values(info.Containers ?? {}).filter(
      (c) => !containers.includes(c.Name ?? ""),
    );
    if (ours && others.length === 0) networks.push(shared);
    else keptNetwork = shared;
  }
  return {
    project,
    containers,
    networks: networks.sort(),
    ...(keptNetwork !== undefined && { keptNetwork }),
    services: Object.keys(vars?.services ?? {}).sort(),
  };
}
