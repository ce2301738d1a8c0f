// `iac destroy --target swarm`: terraform destroy of infra/swarm, then a sweep on the manager
// of everything labelled with the project (services, secrets, configs, networks), a wait until
// no task container of the project is left on any node, and removal of the task images that
// were loaded into the other nodes (the manager keeps its build cache, like the local target).
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { ToolError } from "../kernel/errors.js";
import { type EventSink, logEvent, stageEvent } from "../kernel/events.js";
import { dockerClient } from "../platform/docker.js";
import { readSwarmVars } from "../stack/swarm.js";
import * as tf from "../stack/terraform.js";
import { tfvarsPath } from "../stack/tfvars.js";
import { swarmNodes, withSwarmLock } from "./swarm-deploy.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Task images the last deploy loaded into the nodes (written by deploySwarm). */
export function loadedImagesFile(dir: string): string {
  return path.join(dir, "images.json");
}

async function sweep(docker: Docker, label: string, removed: string[], onEvent: EventSink) {
  const filters = { label: [label] };
  for (const s of (await docker.listServices({ filters })) as {
    ID: string;
    Spec: { Name: string };
  }[]) {
    await docker.getService(s.ID).remove();
    removed.push(`service ${s.Spec.Name}`);
  }
  for (const s of (await docker.listSecrets({ filters })) as {
    ID: string;
    Spec: { Name: string };
  }[]) {
    await docker.getSecret(s.ID).remove();
    removed.push(`secret ${s.Spec.Name}`);
  }
  for (const c of (await docker.listConfigs({ filters })) as {
    ID: string;
    Spec: { Name: string };
  }[]) {
    await docker.getConfig(c.ID).remove();
    removed.push(`config ${c.Spec.Name}`);
  }
  for (const n of await docker.listNetworks({ filters })) {
    await docker.getNetwork(n.Id).remove();
    removed.push(`network ${n.Name}`);
  }
  for (const r of removed) onEvent(logEvent("pipeline", `removed ${r}`));
}

export async function destroySwarm(
  config: Config,
  project: string,
  onEvent: EventSink,
): Promise<{ removed: string[] }> {
  return withSwarmLock(config, project, "destroy", async (dir) => {
    const removed: string[] = [];
    const vars = await readSwarmVars(dir);
    if (vars && tf.hasState(dir)) {
      onEvent(stageEvent("destroy", undefined, `terraform destroy (swarm, project ${project})`));
      const run: tf.TerraformRun = {
        config,
        dir,
        onLine: (line) => onEvent(logEvent("terraform", line)),
      };
      await tf.init(run);
      await tf.destroy(run);
      removed.push(...Object.keys(vars.services).map((s) => `service ${project}-${s}`));
    }
    const label = `io.iac.project=${project}`;
    const manager = dockerClient(config);
    const swept: string[] = [];
    await sweep(manager, label, swept, onEvent);
    for (const s of swept) if (!removed.includes(s)) removed.push(s);

    // Swarm stops task containers asynchronously: wait until no node has one left.
    const nodes = swarmNodes(config);
    const deadline = Date.now() + 60_000;
    const unreachable = new Set<string>();
    for (const node of nodes) {
      const docker = dockerClient({ dockerHost: node });
      for (;;) {
        let left: unknown[];
        try {
          left = await docker.listContainers({ all: true, filters: { label: [label] } });
        } catch (err) {
          // A node that is down cannot be cleaned now; Swarm removes its tasks when it rejoins.
          unreachable.add(node);
          onEvent(
            logEvent(
              "pipeline",
              `warning: swarm node ${node} is unreachable (${(err as Error).message}); its task containers go when it rejoins`,
            ),
          );
          break;
        }
        if (left.length === 0) break;
        if (Date.now() > deadline)
          throw new ToolError(
            `swarm node ${node} still has ${left.length} container(s) of project ${project} after 60 s`,
            "check the node (docker -H <node> ps -a --filter label=io.iac.project=...) and rerun iac destroy",
          );
        await sleep(1000);
      }
    }
    let images: string[] = [];
    try {
      images = JSON.parse(await readFile(loadedImagesFile(dir), "utf8")) as string[];
    } catch {
      images = [];
    }
    const managerHost = config.dockerHost ?? "unix:///var/run/docker.sock";
    for (const node of nodes.filter((n) => n !== managerHost && !unreachable.has(n))) {
      const docker = dockerClient({ dockerHost: node });
      for (const image of images) {
        try {
          await docker.getImage(image).remove();
          removed.push(`image ${image} on ${node}`);
        } catch {
          // not there (never loaded, or already removed)
        }
      }
    }
    await rm(tfvarsPath(dir), { force: true });
    await rm(loadedImagesFile(dir), { force: true });
    onEvent(stageEvent("done", undefined, `destroyed project ${project} (swarm)`));
    return { removed };
  });
}
