// `iac destroy`: terraform destroy, then ALWAYS a sweep of everything labelled with the project
// that Terraform did not remove (labels are the source of truth), also when terraform failed or
// was interrupted; the failure is reported after the sweep.
import { readdir, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { NotFoundError } from "../kernel/errors.js";
import type { Config } from "../kernel/config.js";
import { IacError, errorMessage } from "../kernel/errors.js";
import { InterruptedError } from "../platform/interrupt.js";
import { dockerClient } from "../platform/docker.js";
import { type EventSink, logEvent, noopSink, stageEvent } from "../kernel/events.js";
import { projectDir, readStackVars, tfvarsPath } from "../stack/tfvars.js";
import * as tf from "../stack/terraform.js";
import { prepareState, withProjectLock } from "./project.js";
import { destroySwarm } from "./swarm-destroy.js";

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
    if (vars && tf.hasState(dir)) {
      onEvent(stageEvent("destroy", undefined, `terraform destroy (project ${project})`));
      const run: tf.TerraformRun = {
        config,
        dir,
        signal,
        hardSignal,
        onLine: (line) => onEvent(logEvent("terraform", line)),
      };
      try {
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
    const docker = dockerClient(config);
    const label = `io.iac.project=${project}`;
    for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) {
      await docker.getContainer(c.Id).remove({ force: true });
      const name = c.Names[0]?.replace(/^\//, "") ?? c.Id;
      if (!removed.includes(name)) removed.push(name);
      onEvent(logEvent("pipeline", `removed container ${name}`));
    }
    for (const n of await docker.listNetworks({ filters: { label: [label] } })) {
      await docker.getNetwork(n.Id).remove();
      removed.push(`network ${n.Name}`);
      onEvent(logEvent("pipeline", `removed network ${n.Name}`));
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

/** What `iac destroy` would remove: the project's containers and networks (by label). */
export interface DestroyTargets {
  project: string;
  containers: string[];
  networks: string[];
  /** Services in the project's state (what Terraform manages). */
  services: string[];
}

/** Projects this machine knows: a state folder with applied tfvars, or labelled containers. */
export async function knownProjects(config: Config): Promise<string[]> {
  const names = new Set<string>();
  const entries = await readdir(config.stateDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries)
    if (e.isDirectory() && existsSync(tfvarsPath(path.join(config.stateDir, e.name))))
      names.add(e.name);
  const containers = await dockerClient(config).listContainers({
    all: true,
    filters: { label: ["io.iac.project"] },
  });
  for (const c of containers) if (c.Labels["io.iac.project"]) names.add(c.Labels["io.iac.project"]);
  return [...names].sort();
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
  const networks = (await docker.listNetworks({ filters: { label: [label] } }))
    .map((n) => n.Name)
    .sort();
  if (!vars && containers.length === 0 && networks.length === 0) {
    const known = await knownProjects(config);
    throw new NotFoundError(
      `no project '${project}': nothing deployed under that name`,
      known.length
        ? `known projects: ${known.join(", ")} (iac destroy --project NAME)`
        : "no project is deployed on this machine",
    );
  }
  return { project, containers, networks, services: Object.keys(vars?.services ?? {}).sort() };
}
