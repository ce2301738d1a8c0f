// The fast path of `iac destroy` (issue 14): Terraform's destroy of this module only stops and
// removes Docker containers (the images are `keep_locally`, the network is read, not owned), yet
// it pays terraform's start, provider start, refresh and a graph walk. When the state holds
// nothing else, the containers are stopped (their stop signal, SIGTERM, and their own stop
// timeout: a runner that exits is never waited out) and removed in parallel over the Docker API,
// and the state is emptied the way `terraform destroy` leaves it. Any other state (a resource
// type this path does not know, an image Terraform would delete, a broken file) goes through
// terraform as before.
//
// Writing the state ourselves: the v4 state is JSON that terraform reads back as is; only
// `resources` is emptied and `serial` bumped (lineage, version and the rest kept), which is what
// `terraform destroy` writes. The previous state is kept as the iac backup first.
import { copyFile, readFile } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import { type EventSink, logEvent } from "../kernel/events.js";
import { dockerClient } from "../platform/docker.js";
import { writeFileAtomic } from "../platform/fs.js";
import { IAC_BACKUP, STATE_FILE, stateProblem } from "../stack/state.js";
import { clearApplied } from "./noop.js";

interface StateInstance {
  attributes?: Record<string, unknown>;
}
interface StateResource {
  mode: string;
  type: string;
  name: string;
  instances?: StateInstance[];
}
interface StateDoc {
  version: number;
  serial: number;
  resources: StateResource[];
  outputs?: unknown;
  [key: string]: unknown;
}

export type DestroyPlan =
  | { fast: true; doc: StateDoc; containers: { id: string; name: string }[] }
  | { fast: false; reason: string };

/** Whether the state in `dir` can be destroyed without terraform, and the containers to remove. */
export async function fastDestroyPlan(dir: string): Promise<DestroyPlan> {
  let text: string;
  try {
    text = await readFile(path.join(dir, STATE_FILE), "utf8");
  } catch {
    return { fast: false, reason: "no state file" };
  }
  const problem = stateProblem(text);
  if (problem) return { fast: false, reason: `the state file is unusable (${problem})` };
  const doc = JSON.parse(text) as StateDoc;
  const containers: { id: string; name: string }[] = [];
  for (const r of doc.resources) {
    if (r.mode === "data") continue;
    const address = `${r.type}.${r.name}`;
    if (r.mode !== "managed") return { fast: false, reason: `${address} has mode ${r.mode}` };
    for (const inst of r.instances ?? []) {
      const a = inst.attributes ?? {};
      if (r.type === "docker_image") {
        if (a.keep_locally !== true)
          return { fast: false, reason: `${address} is an image terraform would delete` };
      } else if (r.type === "docker_container") {
        if (typeof a.id !== "string" || a.id === "")
          return { fast: false, reason: `${address} has no container id in the state` };
        containers.push({ id: a.id, name: typeof a.name === "string" ? a.name : a.id });
      } else {
        return { fast: false, reason: `${address} is not a container or a kept image` };
      }
    }
  }
  return { fast: true, doc, containers };
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

/**
 * Stops (graceful: the container's stop signal and stop timeout) and removes the containers of
 * the plan plus `labelled` ones, all in parallel, then writes the emptied state. Returns the
 * names removed. A container already gone counts as removed. Throws (state untouched) when any
 * container could not be removed; a rerun picks up where this stopped.
 */
export async function fastDestroy(
  config: Config,
  dir: string,
  plan: Extract<DestroyPlan, { fast: true }>,
  labelled: { id: string; name: string }[],
  onEvent: EventSink,
  signal?: AbortSignal,
): Promise<string[]> {
  const docker = dockerClient(config);
  const byId = new Map<string, string>();
  for (const c of [...plan.containers, ...labelled]) byId.set(c.id, c.name);
  const results = await Promise.allSettled(
    [...byId].map(async ([id, name]) => {
      const c = docker.getContainer(id);
      // No `t`: Docker uses the container's own stop timeout (what Terraform would wait).
      await c.stop().catch((err: unknown) => {
        // 304: already stopped; 404: already gone (the remove below says so too).
        if ((err as { statusCode?: number }).statusCode !== 304 && !isNotFound(err)) throw err;
      });
      await c.remove({ force: true, v: true }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      onEvent(logEvent("pipeline", `removed container ${name}`));
      return name;
    }),
  );
  const failed = results.flatMap((r, i) =>
    r.status === "rejected" ? [`${[...byId.values()][i]}: ${String(r.reason)}`] : [],
  );
  if (failed.length)
    throw new IacError(
      `could not remove ${failed.length} container(s): ${failed.join("; ")}`,
      "check the Docker engine (docker ps -a), then run iac destroy again",
    );
  signal?.throwIfAborted();
  const file = path.join(dir, STATE_FILE);
  await copyFile(file, path.join(dir, IAC_BACKUP));
  const emptied: StateDoc = { ...plan.doc, serial: plan.doc.serial + 1, resources: [] };
  if ("outputs" in plan.doc) emptied.outputs = {};
  await writeFileAtomic(file, JSON.stringify(emptied, null, 2) + "\n", 0o600);
  await clearApplied(dir);
  return results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
}
