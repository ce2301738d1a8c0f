// `iac destroy`: terraform destroy, then a sweep of everything labelled with the project that
// Terraform did not know about (labels are the source of truth).
import { rm } from "node:fs/promises";
import type { Config } from "../kernel/config.js";
import { dockerClient } from "../platform/docker.js";
import { type EventSink, logEvent, noopSink, stageEvent } from "../kernel/events.js";
import { readStackVars, tfvarsPath } from "../stack/tfvars.js";
import * as tf from "../stack/terraform.js";
import { withProjectLock } from "./project.js";

export async function destroy(
  config: Config,
  project: string,
  onEvent: EventSink = noopSink,
): Promise<{ removed: string[] }> {
  return withProjectLock(config, project, "destroy", async (dir) => {
    const removed: string[] = [];
    const vars = await readStackVars(dir);
    if (vars && tf.hasState(dir)) {
      onEvent(stageEvent("destroy", undefined, `terraform destroy (project ${project})`));
      const run: tf.TerraformRun = {
        config,
        dir,
        onLine: (line) => onEvent(logEvent("terraform", line)),
      };
      await tf.init(run);
      await tf.destroy(run);
      removed.push(...Object.keys(vars.services).map((s) => `${project}-${s}`));
    }
    // Sweep anything labelled with this project that terraform did not know about
    // (e.g. a failed apply half-way, or state lost): labels are the source of truth.
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
    await rm(tfvarsPath(dir), { force: true });
    onEvent(stageEvent("done", undefined, `destroyed project ${project}`));
    return { removed };
  });
}
