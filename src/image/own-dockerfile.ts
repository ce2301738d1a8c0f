// `build: dockerfile`: the image is the repository's own Dockerfile, built as it is, with the
// runner layered on top (infra/templates/runner-layer.Dockerfile.tmpl), so health, logs and the
// sidecar work as for every other service. Two engine builds:
//   1. the repo's Dockerfile in the repo's context (honouring its .dockerignore), its external
//      FROM images mapped onto local images the way the base image is obtained everywhere
//      (present -> docker pull -> the local substitute; see runtime-images.ts). The result stays
//      untagged: it is the parent of the final image and goes with it.
//   2. FROM that image: the runner, labels, HEALTHCHECK, ENTRYPOINT = runner + main()'s argv.
// The Dockerfile is only read on the host (detect/dockerfile.ts); what it runs, runs in the build.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { errorMessage } from "../kernel/errors.js";
import type { BuiltImage } from "../kernel/types.js";
import { readDockerfile, rewriteFroms, type ExternalFrom } from "../detect/dockerfile.js";
import { SourceTree } from "../detect/tree.js";
import { type BuildOptions, BuildError, sourceUrl } from "./build.js";
import { collectDir, fileEntry, type TarEntry } from "./context.js";
import { DOCKERFILE_NAME, renderDockerfile } from "./dockerfile.js";
import { NO_IGNORE_RULES, parseDockerignore } from "./dockerignore.js";
import { engineBuild } from "./engine-build.js";
import { dockerBackend, ensureImage, type ImageBackend, substituteFor } from "./runtime-images.js";
import { runnerVersion } from "./tag.js";
import { dockerClient } from "../platform/docker.js";
import { REPO_ROOT, RUNNER_DIR, runnerRequirements, runnerWheelhouse } from "./wheelhouse.js";

export const RUNNER_LAYER_TEMPLATE = path.join(
  REPO_ROOT,
  "infra",
  "templates",
  "runner-layer.Dockerfile.tmpl",
);

/** One resolution per image name and process: a failed pull is not retried for every service. */
const resolved = new Map<string, Promise<string>>();

/**
 * The local image a Dockerfile's `FROM ref` builds on: the configured base when `ref` is it;
 * `ref` itself when present; the base when it is the recorded local substitute of `ref` (make
 * bootstrap tried the pull already, exactly as for the base of every generated image); else
 * the full order -- docker pull, then the local substitute, or an error naming the image.
 */
export async function resolveFromImage(
  ref: string,
  config: Pick<Config, "baseImage">,
  backend: ImageBackend,
): Promise<string> {
  if (ref === config.baseImage) return ref;
  if (await backend.inspect(ref)) return ref;
  const sub = substituteFor("base", ref);
  if (sub && sub.official === ref && config.baseImage === sub.local) return sub.local;
  let memo = resolved.get(ref);
  if (!memo) {
    memo = ensureImage("base", ref, backend).then((c) => c.image);
    resolved.set(ref, memo);
    memo.catch(() => resolved.delete(ref));
  }
  return memo;
}

async function mapFroms(
  froms: ExternalFrom[],
  config: Config,
  backend: ImageBackend,
  emit: (line: string) => void,
): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const f of froms) {
    if (map.has(f.image)) continue;
    let image: string;
    try {
      image = await resolveFromImage(f.image, config, backend);
    } catch (err) {
      throw new BuildError(
        `Dockerfile:${f.line}: FROM ${f.image}: ${errorMessage(err)}`,
        undefined,
        [],
        `the image is neither present nor pullable here and has no local substitute: ` +
          `\`docker load\` it, or base the Dockerfile on python:3.11-slim (substituted locally when it cannot be pulled)`,
      );
    }
    if (image !== f.image)
      emit(`Dockerfile:${f.line}: FROM ${f.image} -> ${image} (local substitute)`);
    map.set(f.image, image);
  }
  return map;
}

interface OwnPlan {
  tag: string;
  /** The repo's Dockerfile with its FROM images mapped onto local ones. */
  appDockerfile: string;
  /** The rendered runner layer. */
  layer: string;
}

/**
 * The tag of an own-Dockerfile image (a content hash of the commit, the Dockerfile as built,
 * the ids of its FROM images, the runner layer and the labels), without building: `iac plan`
 * uses it too. Obtaining the FROM images may pull or build the base substitute, as for every
 * build.
 */
export async function ownDockerfileTag(
  opts: BuildOptions & { backend?: ImageBackend },
  emit: (line: string) => void = () => {},
): Promise<OwnPlan> {
  const { config, service, slug, source, entrypoint } = opts;
  const docker = opts.docker ?? dockerClient(config);
  const name = entrypoint.dockerfile!;
  const text = await new SourceTree(source.root).readText(path.join(source.dir, name));
  if (text === undefined)
    throw new BuildError(`${name} is missing from the source of ${service}`, undefined, []);
  const facts = readDockerfile(text);
  const backend = opts.backend ?? dockerBackend(config, emit);
  const froms = await mapFroms(facts.froms, config, backend, emit);
  const appDockerfile = rewriteFroms(text, facts.froms, froms);
  const fromIds: string[] = [];
  for (const image of new Set(froms.values()))
    fromIds.push(`${image}=${(await docker.getImage(image).inspect()).Id}`);
  const layer = renderDockerfile(await readFile(RUNNER_LAYER_TEMPLATE, "utf8"), entrypoint);
  const h = createHash("sha256");
  for (const part of [
    "iac-image-dockerfile-v1",
    service,
    slug.raw,
    source.commit,
    JSON.stringify([entrypoint.kind, entrypoint.argv, name]),
    appDockerfile,
    fromIds.sort().join("\n"),
    layer,
    await runnerVersion(),
    config.pipIndexUrl ?? "",
    JSON.stringify(Object.entries(opts.labels ?? {}).sort()),
  ])
    h.update(part).update("\0");
  return { tag: `iac/${service}:${h.digest("hex").slice(0, 20)}`, appDockerfile, layer };
}

export async function buildFromOwnDockerfile(
  opts: BuildOptions & { docker: Docker; backend?: ImageBackend },
  emit: (line: string) => void,
): Promise<BuiltImage> {
  const { config, service, slug, source, entrypoint, docker } = opts;
  const name = entrypoint.dockerfile!;
  const tree = new SourceTree(source.root);
  const { tag, appDockerfile, layer } = await ownDockerfileTag(opts, emit);
  try {
    const existing = await docker.getImage(tag).inspect();
    emit(`image ${tag} exists; build skipped`);
    return { tag, id: existing.Id, built: false };
  } catch {
    // not built yet
  }

  // 1. The repository's Dockerfile in its own context. The rewritten Dockerfile replaces the
  // original under the same name (the daemon drops it again if .dockerignore excludes it).
  const ignoreText = await tree.readText(path.join(source.dir, ".dockerignore"));
  const rules = ignoreText !== undefined ? parseDockerignore(ignoreText) : NO_IGNORE_RULES;
  const appEntries: TarEntry[] = [];
  await collectDir(source.dir, "", rules, appEntries);
  const context = appEntries.filter((e) => e.name !== name);
  context.push(fileEntry(name, appDockerfile));
  emit(`building ${service}'s own ${name} (${context.length} context entries)`);
  const app = await engineBuild(
    docker,
    context,
    { dockerfile: name, noCache: opts.noCache, signal: opts.signal },
    emit,
  );
  if (app.failure || !app.id)
    throw new BuildError(
      `building ${service}'s own ${name} failed${app.step ? ` at ${app.step}` : ""}: ` +
        `${app.failure ?? "the engine reported no image id"}\n--- last build output ---\n${app.last.slice(-12).join("\n")}`,
      app.step,
      app.last,
      `fix ${name} (it is built as it is, from the repository's folder, without network-only ` +
        "BuildKit features: the classic builder runs it), or remove `build: dockerfile`",
    );

  // 2. The runner on top. No auto-instrumentation: the image's Python environment is the repo's.
  emit(
    "OpenTelemetry auto-instrumentation of main(): not installed (an image from the repository's " +
      "own Dockerfile keeps its own Python packages; add opentelemetry-distro there to use it)",
  );
  const runnerWheels = await runnerWheelhouse(config, { signal: opts.signal, onLine: emit });
  const entries: TarEntry[] = [
    fileEntry(DOCKERFILE_NAME, layer),
    { name: "iac", type: "dir", mode: 0o755 },
    { name: "iac/wheels", type: "dir", mode: 0o755 },
    { name: "iac/wheels/runner", type: "dir", mode: 0o755 },
    { name: "iac/runner", type: "dir", mode: 0o755 },
    fileEntry("iac/runner/requirements.txt", await runnerRequirements()),
    { name: "iac/runner/iac_runner", type: "dir", mode: 0o755 },
  ];
  for (const f of runnerWheels.files)
    entries.push({
      name: `iac/wheels/runner/${f}`,
      type: "file",
      mode: 0o644,
      file: path.join(runnerWheels.dir, f),
    });
  await collectDir(
    path.join(RUNNER_DIR, "iac_runner"),
    "iac/runner/iac_runner/",
    NO_IGNORE_RULES,
    entries,
  );
  emit(`building ${tag}: the runner on top of ${app.id.slice(0, 19)}`);
  const final = await engineBuild(
    docker,
    entries,
    {
      tag,
      dockerfile: DOCKERFILE_NAME,
      buildargs: {
        APP_IMAGE: app.id,
        PIP_INDEX_URL: config.pipIndexUrl ?? "",
        IAC_SERVICE: service,
        IAC_SLUG: slug.raw,
        IAC_COMMIT: source.commit,
        IAC_ENTRYPOINT: JSON.stringify(entrypoint.argv),
        IAC_ENTRYPOINT_KIND: entrypoint.kind,
        IAC_SOURCE_URL: sourceUrl(config, slug),
      },
      labels: opts.labels,
      noCache: opts.noCache,
      signal: opts.signal,
    },
    emit,
  );
  if (final.failure) {
    const ours = final.last.find((l) => l.startsWith("iac: "));
    throw new BuildError(
      `layering the runner onto ${service}'s own ${name} failed${final.step ? ` at ${final.step}` : ""}: ` +
        `${ours ?? final.failure}\n--- last build output ---\n${final.last.slice(-12).join("\n")}`,
      final.step,
      final.last,
      "the image built from the Dockerfile needs python3 = CPython 3.11 with venv and /bin/sh " +
        "(base it on python:3.11-slim)",
    );
  }
  const inspected = await docker.getImage(tag).inspect();
  return { tag, id: final.id ?? inspected.Id, built: true };
}
