// Source + Entrypoint -> image: renders the Dockerfile (dockerfile.ts), streams a tar build
// context (context.ts: repo honouring .dockerignore, the runner, host-downloaded wheels) to the
// Docker Engine API, and tags the result `iac/<service>:<content hash>` (reused when present).
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { dockerClient } from "../platform/docker.js";
import { IacError } from "../kernel/errors.js";
import { logEvent, type EventSink } from "../kernel/events.js";
import type { BuiltImage, Entrypoint, Slug, Source, TelemetryMode } from "../kernel/types.js";
import {
  APP_OTEL_DIR,
  appTelemetryRequirements,
  appRequirements,
  RUNNER_DIR,
  BUILD_TOOLS,
  runnerRuntimeRequirements,
  runnerWheelhouse,
  ensureWheelhouse,
} from "./wheelhouse.js";
import { DOCKERFILE_NAME, TEMPLATE_FILE, renderDockerfile } from "./dockerfile.js";
import { NO_IGNORE_RULES, parseDockerignore } from "./dockerignore.js";
import { SourceTree } from "../detect/tree.js";
import { type TarEntry, collectDir, fileEntry } from "./context.js";
import { extract as tarExtract } from "tar-stream";
import { engineBuild } from "./engine-build.js";
import { buildFromOwnDockerfile, ownDockerfileTag } from "./own-dockerfile.js";
import { appOtelVersion, baseImageId, runnerVersion } from "./tag.js";
import { readProject, unbuildableReason } from "../detect/project.js";
import { deriveVersion, pretendVersionVar } from "../detect/version.js";
import { readSetupPy } from "./setuppy.js";

/** Where the app's constraints land in the image (copied with its wheels). */
const CONSTRAINTS_IN_IMAGE = "/opt/iac-wheels/app/iac-constraints.txt";

/** The line runner/app_otel/install.py prints in the build: `IAC-TELEMETRY on|off: reason`. */
const TELEMETRY_LINE = /^IAC-TELEMETRY (on|off): (.*)$/;

export class BuildError extends IacError {
  override name = "BuildError";
  constructor(
    message: string,
    readonly step: string | undefined,
    readonly lastLines: string[],
    hint?: string,
  ) {
    super(message, hint);
  }
}

export function sourceUrl(config: Pick<Config, "github">, slug: Slug): string {
  if (slug.kind === "github") return `${config.github.serverUrl}/${slug.owner}/${slug.repo}`;
  if (slug.kind === "git") return slug.location;
  return `file://${slug.location}`;
}

export interface BuildOptions {
  config: Config;
  service: string;
  slug: Slug;
  source: Source;
  entrypoint: Entrypoint;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** Extra image labels (tests: io.iac.test=1). Part of the tag. */
  labels?: Record<string, string>;
  /** Reuse a Docker client. */
  docker?: Docker;
  /** Ignore Docker's layer cache (benchmarks: a truly cold build). */
  noCache?: boolean;
  /** OpenTelemetry auto-instrumentation of main(): `auto` (default) or `off`. Part of the tag. */
  telemetry?: TelemetryMode;
}

interface TagParts {
  tag: string;
  dockerfile: string;
  app: Awaited<ReturnType<typeof appRequirements>>;
  baseId: string;
  /** The version a VCS-versioned build gets, and the per-distribution variable that carries it. */
  version: string;
  versionVar: string;
}

/**
 * The image's tag, a content hash of everything that goes into it (source commit, Dockerfile,
 * runner, base image id, requirements, labels), computed without building anything: `iac plan`
 * uses it to know which images a deploy would build.
 */
export async function imageTag(opts: BuildOptions): Promise<TagParts> {
  const { config, service, slug, source, entrypoint } = opts;
  const docker = opts.docker ?? dockerClient(config);
  const template = await readFile(TEMPLATE_FILE, "utf8");
  const dockerfile = renderDockerfile(template, entrypoint);
  // pyproject.toml / setup.cfg were read once, by detection; the same model serves here.
  const project = await readProject(source);
  const unbuildable = entrypoint.installProject ? unbuildableReason(project) : undefined;
  if (unbuildable)
    throw new BuildError(
      `image build for ${service}: ${unbuildable}`,
      undefined,
      [],
      "publish the project's wheel to your index and list it in requirements.txt, or set an entrypoint that runs from the source without installing the project",
    );
  const app = await appRequirements(source, entrypoint, {
    project,
    readSetupPy: (text) => readSetupPy(docker, config.baseImage, text, config.cacheDir),
  });
  // No .git reaches the build: a version from VCS comes from the resolved ref (detect/version.ts).
  const version = deriveVersion(slug.ref, source.commit).version;
  const versionVar = pretendVersionVar(project.name) ?? "SETUPTOOLS_SCM_PRETEND_VERSION";

  const baseId = await baseImageId(docker, config.baseImage);
  const h = createHash("sha256");
  for (const part of [
    "iac-image-v1",
    service,
    slug.raw,
    source.commit,
    JSON.stringify([entrypoint.kind, entrypoint.argv, entrypoint.installProject]),
    dockerfile,
    await runnerVersion(),
    config.baseImage,
    baseId,
    app.text,
    app.buildText,
    app.constraints,
    version,
    versionVar,
    config.pipIndexUrl ?? "",
    JSON.stringify(Object.entries(opts.labels ?? {}).sort()),
    `telemetry=${opts.telemetry ?? "auto"}`,
    await appOtelVersion(),
  ]) {
    h.update(part).update("\0");
  }
  return {
    tag: `iac/${service}:${h.digest("hex").slice(0, 20)}`,
    dockerfile,
    app,
    baseId,
    version,
    versionVar,
  };
}

/** Whether an image is present in the local engine. */
export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/** The tag a build would produce, for either kind of build (generated or own Dockerfile). */
export async function plannedTag(opts: BuildOptions): Promise<string> {
  if (opts.entrypoint.dockerfile) return (await ownDockerfileTag(opts)).tag;
  return (await imageTag(opts)).tag;
}

export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  const { config, service, slug, source, entrypoint } = opts;
  const emit = (line: string) => opts.onEvent?.(logEvent("build", line, service));
  const docker = opts.docker ?? dockerClient(config);
  if (entrypoint.dockerfile) return buildFromOwnDockerfile({ ...opts, docker }, emit);
  const { tag, dockerfile, app, baseId, version, versionVar } = await imageTag({
    ...opts,
    docker,
  });
  for (const w of app.warnings) emit(`warning: ${w}`);
  if (baseId === "absent") {
    emit(
      `base image ${config.baseImage} is not present locally: Docker will try to pull it ` +
        "(`iac images` obtains it: present -> docker pull -> local substitute)",
    );
  }

  try {
    const existing = await docker.getImage(tag).inspect();
    emit(`image ${tag} exists; build skipped`);
    return { tag, id: existing.Id, built: false };
  } catch {
    // not built yet
  }

  // The four wheel downloads (pip runs on the host) go side by side.
  const telemetry = opts.telemetry ?? "auto";
  const [runnerWheels, appWheels, buildWheels, otelWheels] = await Promise.all([
    runnerWheelhouse(config, { signal: opts.signal, onLine: emit }),
    app.text
      ? ensureWheelhouse(config, "app", app.text, {
          signal: opts.signal,
          onLine: emit,
          constraints: app.constraints,
        })
      : undefined,
    // Build requirements are resolved on their own (they never share the app's venv).
    app.buildText
      ? ensureWheelhouse(config, "build", app.buildText, { signal: opts.signal, onLine: emit })
      : undefined,
    telemetry === "auto"
      ? appTelemetryRequirements().then((reqs) =>
          ensureWheelhouse(config, "otel", reqs, { signal: opts.signal, onLine: emit }),
        )
      : undefined,
  ]);

  // Read through the SourceTree like every host-side read of the repo (no link leaves it).
  const ignoreText = await new SourceTree(source.root).readText(
    path.join(source.dir, ".dockerignore"),
  );
  const rules = ignoreText !== undefined ? parseDockerignore(ignoreText) : NO_IGNORE_RULES;
  const entries: TarEntry[] = [
    fileEntry(DOCKERFILE_NAME, dockerfile),
    { name: "iac", type: "dir", mode: 0o755 },
    { name: "iac/wheels", type: "dir", mode: 0o755 },
    { name: "iac/wheels/runner", type: "dir", mode: 0o755 },
    { name: "iac/wheels/app", type: "dir", mode: 0o755 },
    { name: "iac/runner", type: "dir", mode: 0o755 },
    fileEntry("iac/runner/requirements.txt", await runnerRuntimeRequirements()),
    fileEntry("iac/runner/build-tools.txt", BUILD_TOOLS.join("\n") + "\n"),
    // Constraints pin versions in the image too (the runner's wheels are on the find-links
    // path as well, and pip would otherwise take the newest of both).
    fileEntry(
      "iac/app-requirements.txt",
      app.text && app.constraints ? `-c ${CONSTRAINTS_IN_IMAGE}\n${app.text}` : app.text,
    ),
    { name: "iac/runner/iac_runner", type: "dir", mode: 0o755 },
    { name: "app", type: "dir", mode: 0o755 },
  ];
  for (const f of runnerWheels.files) {
    entries.push({
      name: `iac/wheels/runner/${f}`,
      type: "file",
      mode: 0o644,
      file: path.join(runnerWheels.dir, f),
    });
  }
  if (app.constraints)
    entries.push(fileEntry("iac/wheels/app/iac-constraints.txt", app.constraints));
  const appFiles = new Set<string>();
  for (const wh of [appWheels, buildWheels]) {
    for (const f of wh?.files ?? []) {
      if (appFiles.has(f)) continue;
      appFiles.add(f);
      entries.push({
        name: `iac/wheels/app/${f}`,
        type: "file",
        mode: 0o644,
        file: path.join(wh!.dir, f),
      });
    }
  }
  await collectDir(
    path.join(RUNNER_DIR, "iac_runner"),
    "iac/runner/iac_runner/",
    NO_IGNORE_RULES,
    entries,
  );
  await collectDir(APP_OTEL_DIR, "iac/app-otel/", NO_IGNORE_RULES, entries);
  entries.push({ name: "iac/app-otel/wheels", type: "dir", mode: 0o755 });
  for (const f of otelWheels?.files ?? [])
    entries.push({
      name: `iac/app-otel/wheels/${f}`,
      type: "file",
      mode: 0o644,
      file: path.join(otelWheels!.dir, f),
    });
  await collectDir(source.dir, "app/", rules, entries);

  // Only the args the rendered Dockerfile declares (the project's install step, and with it
  // IAC_VERSION_VAR, is rendered only when the entrypoint needs the project installed).
  const buildargs: Record<string, string> = {
    BASE_IMAGE: config.baseImage,
    PIP_INDEX_URL: config.pipIndexUrl ?? "",
    IAC_SERVICE: service,
    IAC_SLUG: slug.raw,
    IAC_COMMIT: source.commit,
    IAC_ENTRYPOINT: JSON.stringify(entrypoint.argv),
    IAC_ENTRYPOINT_KIND: entrypoint.kind,
    IAC_SOURCE_URL: sourceUrl(config, slug),
    IAC_VERSION: version,
    IAC_TELEMETRY: telemetry,
    ...(entrypoint.installProject && { IAC_VERSION_VAR: versionVar }),
  };
  emit(`building ${tag} FROM ${config.baseImage} (${entries.length} context entries)`);
  let verdict: BuiltImage["telemetry"];
  const announce = (v: NonNullable<BuiltImage["telemetry"]>) =>
    emit(
      v.enabled
        ? `OpenTelemetry auto-instrumentation of main(): on (${v.reason})`
        : `warning: OpenTelemetry auto-instrumentation of main() left out: ${v.reason}`,
    );
  const onBuildLine = (line: string) => {
    emit(line);
    const m = TELEMETRY_LINE.exec(line);
    if (!m) return;
    verdict = { enabled: m[1] === "on", reason: m[2]! };
    announce(verdict);
  };
  // Apps with the same requirements share every layer but the last few; the classic builder
  // does not notice that two concurrent builds run the same step, so the first build of each
  // shared prefix runs before the others (which then take its layers from the cache).
  const prefixKey = entrypoint.installProject
    ? undefined
    : JSON.stringify([
        config.baseImage,
        baseId,
        await runnerVersion(),
        await appOtelVersion(),
        app.text,
        app.buildText,
        app.constraints,
        telemetry,
        config.pipIndexUrl ?? "",
      ]);
  const { failure, step, last, id } = await firstOfPrefix(prefixKey, emit, () =>
    engineBuild(
      docker,
      entries,
      {
        tag,
        dockerfile: DOCKERFILE_NAME,
        buildargs,
        labels: opts.labels,
        noCache: opts.noCache,
        signal: opts.signal,
      },
      onBuildLine,
    ),
  );
  if (failure) {
    throw new BuildError(
      `image build for ${service} failed${step ? ` at ${step}` : ""}: ${failure}\n--- last build output ---\n${last.slice(-12).join("\n")}`,
      step,
      last,
      baseId === "absent"
        ? `the base image ${config.baseImage} is not present locally and could not be pulled: ` +
            "run `iac images base` (or `make bootstrap`): it pulls the base image or, when that fails, builds the local substitute"
        : "see the build output above; set IAC_BASE_IMAGE to an image with python3 and python3-venv",
    );
  }
  const inspected = await docker.getImage(tag).inspect();
  // Docker's layer cache skips the install step (and its IAC-TELEMETRY line) when an identical
  // build ran before: the verdict is then read from the file that step left in the image.
  if (!verdict && telemetry === "auto") {
    verdict = await readTelemetryVerdict(docker, tag);
    if (verdict) announce(verdict);
  }
  return { tag, id: id ?? inspected.Id, built: true, ...(verdict && { telemetry: verdict }) };
}

/** Shared layer prefixes built in this process: undefined while the first build runs. */
const prefixes = new Map<string, Promise<void>>();
const prefixDone = new Set<string>();

/**
 * Runs `build` at once when its shared prefix (key) is built already or it is the first build
 * of it; otherwise after the first one has finished (whatever its outcome).
 */
export async function firstOfPrefix<T>(
  key: string | undefined,
  emit: (line: string) => void,
  build: () => Promise<T>,
): Promise<T> {
  if (key === undefined || prefixDone.has(key)) return build();
  const first = prefixes.get(key);
  if (first) {
    emit("waiting for the build of another service with the same requirements (shared layers)");
    await first;
    return build();
  }
  let release!: () => void;
  prefixes.set(key, new Promise<void>((r) => (release = r)));
  try {
    return await build();
  } finally {
    prefixDone.add(key);
    prefixes.delete(key);
    release();
  }
}

/** /opt/iac-telemetry.json of an image (written by runner/app_otel/install.py), if present. */
async function readTelemetryVerdict(
  docker: Docker,
  image: string,
): Promise<BuiltImage["telemetry"]> {
  const container = await docker.createContainer({ Image: image, Entrypoint: ["true"] });
  try {
    const archive = await container.getArchive({ path: "/opt/iac-telemetry.json" });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const extract = tarExtract();
      extract.on("entry", (_header, stream, next) => {
        stream.on("data", (d: unknown) => chunks.push(d as Buffer));
        stream.on("end", next);
        stream.resume();
      });
      extract.on("finish", resolve);
      extract.on("error", reject);
      archive.pipe(extract);
    });
    const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
      enabled?: unknown;
      reason?: unknown;
    };
    return typeof parsed.enabled === "boolean" && typeof parsed.reason === "string"
      ? { enabled: parsed.enabled, reason: parsed.reason }
      : undefined;
  } catch {
    return undefined; // no verdict file (an older image): unknown, the runner says it at start
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}
