// Swarm target: the task image = the service's app image + the Envoy binary (a Swarm task
// cannot share a network namespace with another service, so the sidecar travels in the task;
// the runner starts and supervises it). Built FROM the app image: one extra layer.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { ToolError } from "../kernel/errors.js";
import { type EventSink, logEvent } from "../kernel/events.js";
import type { BuiltImage } from "../kernel/types.js";
import { fileEntry, tarStream } from "./context.js";
import { DOCKERFILE_NAME } from "./dockerfile.js";
import { REPO_ROOT } from "./wheelhouse.js";

export const TASK_TEMPLATE_FILE = path.join(
  REPO_ROOT,
  "infra",
  "templates",
  "task.Dockerfile.tmpl",
);

export interface TaskImageOptions {
  docker: Docker;
  service: string;
  /** The app image (tag) and its id. */
  app: { tag: string; id: string };
  envoyImage: string;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

/** Tag of the task image: a hash of the app image id, the Envoy image id and the template. */
export function taskImageTag(service: string, appId: string, envoyId: string, template: string) {
  const h = createHash("sha256");
  for (const part of ["iac-task-v1", service, appId, envoyId, template])
    h.update(part).update("\0");
  return `iac/${service}-task:${h.digest("hex").slice(0, 20)}`;
}

export async function buildTaskImage(opts: TaskImageOptions): Promise<BuiltImage> {
  const { docker, service } = opts;
  const emit = (line: string) => opts.onEvent?.(logEvent("build", line, service));
  let envoyId: string;
  try {
    envoyId = (await docker.getImage(opts.envoyImage).inspect()).Id;
  } catch {
    throw new ToolError(
      `Envoy image '${opts.envoyImage}' is not present on the build engine`,
      "load it there (docker save | docker -H <manager> load) or set IAC_ENVOY_IMAGE",
    );
  }
  const template = await readFile(TASK_TEMPLATE_FILE, "utf8");
  const tag = taskImageTag(service, opts.app.id, envoyId, template);
  try {
    const existing = await docker.getImage(tag).inspect();
    emit(`task image ${tag} exists; build skipped`);
    return { tag, id: existing.Id, built: false };
  } catch {
    // not built yet
  }
  emit(`building task image ${tag} (${opts.app.tag} + Envoy from ${opts.envoyImage})`);
  const stream = await docker.buildImage(tarStream([fileEntry(DOCKERFILE_NAME, template)]), {
    t: tag,
    dockerfile: DOCKERFILE_NAME,
    buildargs: { APP_IMAGE: opts.app.id, ENVOY_IMAGE: opts.envoyImage },
    rm: true,
    forcerm: true,
    abortSignal: opts.signal,
  } as Docker.ImageBuildOptions);
  let failure: string | undefined;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (msg: { stream?: string; error?: string }) => {
        if (msg.error) failure = msg.error;
        for (const line of (msg.stream ?? "").split(/\r?\n/)) if (line.trim()) emit(line);
      },
    );
  }).catch((err: Error) => {
    failure ??= err.message;
  });
  if (failure) {
    throw new ToolError(
      `task image build for ${service} failed: ${failure}`,
      `the Envoy image must have /usr/local/bin/envoy (as envoyproxy/envoy does): check ${opts.envoyImage}`,
    );
  }
  return { tag, id: (await docker.getImage(tag).inspect()).Id, built: true };
}
