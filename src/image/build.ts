// Source + Entrypoint -> image: renders infra/templates/app.Dockerfile.tmpl, streams a tar
// build context (repo honouring .dockerignore, the runner, host-downloaded wheels) to the
// Docker Engine API, and tags the result `iac/<service>:<content hash>` (reused when present).
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import type Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { dockerClient } from "../platform/docker.js";
import { IacError } from "../kernel/errors.js";
import { logEvent, type EventSink } from "../kernel/events.js";
import type { BuiltImage, Entrypoint, Slug, Source } from "../kernel/types.js";
import {
  appRequirements,
  REPO_ROOT,
  RUNNER_DIR,
  runnerRequirements,
  runnerWheelhouse,
  ensureWheelhouse,
} from "./wheelhouse.js";

export const TEMPLATE_FILE = path.join(REPO_ROOT, "infra", "templates", "app.Dockerfile.tmpl");
export const RUNNER_ENTRYPOINT = ["/opt/iac-runner/bin/python", "-m", "iac_runner", "--"];
const DOCKERFILE_NAME = "iac.Dockerfile";
/** Fixed mtime for every tar entry: identical content gives an identical context. */
const TAR_MTIME = 946684800; // 2000-01-01

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

// ------------------------------------------------------------------ Dockerfile

export function renderDockerfile(template: string, entrypoint: Pick<Entrypoint, "argv">): string {
  if (entrypoint.argv.length === 0) throw new IacError("entrypoint argv is empty");
  if (entrypoint.argv.some((a) => a.includes("\0"))) {
    throw new IacError("entrypoint argv contains a NUL byte");
  }
  // Exec form: a JSON array on one line (JSON.stringify escapes newlines and quotes).
  const json = JSON.stringify([...RUNNER_ENTRYPOINT, ...entrypoint.argv]);
  const line = /^ENTRYPOINT \{\{ENTRYPOINT_JSON\}\}$/m;
  if (!line.test(template)) {
    throw new IacError(`${TEMPLATE_FILE} lacks the line "ENTRYPOINT {{ENTRYPOINT_JSON}}"`);
  }
  return template.replace(line, () => `ENTRYPOINT ${json}`);
}

// ------------------------------------------------------------------ .dockerignore

interface IgnoreRule {
  negate: boolean;
  re: RegExp;
}

function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        i++;
        if (pattern[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < pattern.length) re += "\\" + pattern[++i];
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        let cls = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (cls.startsWith("!")) cls = "^" + cls.slice(1);
        re += `[${cls}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Parses .dockerignore text (Docker's rules: globs, `**`, `!` re-includes, last match wins). */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1).trim();
    line = path.posix.normalize(line).replace(/^\/+/, "").replace(/\/+$/, "");
    if (!line || line === ".") continue;
    rules.push({ negate, re: globToRegExp(line) });
  }
  return rules;
}

/** True when `rel` (posix, relative to the context root) or one of its parents is ignored. */
export function isIgnored(rules: IgnoreRule[], rel: string): boolean {
  const parts = rel.split("/");
  let ignored = false;
  for (const rule of rules) {
    for (let n = 1; n <= parts.length; n++) {
      if (rule.re.test(parts.slice(0, n).join("/"))) {
        ignored = !rule.negate;
        break;
      }
    }
  }
  return ignored;
}

// ------------------------------------------------------------------ tar

export interface TarEntry {
  name: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  /** File content, or `file` to read it from when the tar is streamed (one file in memory at a time). */
  data?: Buffer;
  file?: string;
  linkname?: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return Buffer.from(`${len}${body}`);
}

function header(name: string, type: string, size: number, mode: number, linkname = ""): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100, "utf8");
  h.write(octal(mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(TAR_MTIME, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(type, 156, "ascii");
  h.write(linkname, 157, 100, "utf8");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write("root", 265, "ascii");
  h.write("root", 297, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, "ascii");
  return h;
}

function pad(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512, 0);
}

function* tarChunks(entry: TarEntry): Generator<Buffer> {
  const name = entry.type === "dir" ? `${entry.name}/` : entry.name;
  const link = entry.linkname ?? "";
  if (
    Buffer.byteLength(name) > 100 ||
    Buffer.byteLength(link) > 100 ||
    /[^\x20-\x7e]/.test(name + link)
  ) {
    const pax = Buffer.concat([
      paxRecord("path", name),
      ...(link ? [paxRecord("linkpath", link)] : []),
    ]);
    yield header("././@PaxHeader", "x", pax.length, 0o644);
    yield pax;
    yield pad(pax.length);
  }
  const size = entry.type === "file" ? entry.data!.length : 0;
  const type = entry.type === "file" ? "0" : entry.type === "dir" ? "5" : "2";
  yield header(
    Buffer.from(name).subarray(0, 100).toString("utf8"),
    type,
    size,
    entry.mode,
    link.slice(0, 100),
  );
  if (size) {
    yield entry.data!;
    yield pad(size);
  }
}

/** Walks `dir` into tar entries under `prefix`, skipping .git and ignored paths. */
export async function collectDir(
  dir: string,
  prefix: string,
  rules: IgnoreRule[],
  out: TarEntry[],
  rel = "",
): Promise<void> {
  const names = (await readdir(path.join(dir, rel))).sort();
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    if (name === ".git" || name === "__pycache__") continue;
    if (isIgnored(rules, r)) {
      // A re-include (`!`) may still match something below an ignored directory.
      if (!rules.some((x) => x.negate)) continue;
    }
    const abs = path.join(dir, r);
    const st = await lstat(abs);
    const ignored = isIgnored(rules, r);
    if (st.isDirectory()) {
      if (!ignored) out.push({ name: `${prefix}${r}`, type: "dir", mode: 0o755 });
      await collectDir(dir, prefix, rules, out, r);
    } else if (ignored) {
      continue;
    } else if (st.isSymbolicLink()) {
      out.push({
        name: `${prefix}${r}`,
        type: "symlink",
        mode: 0o777,
        linkname: await readlink(abs),
      });
    } else if (st.isFile()) {
      const exec = (st.mode & 0o111) !== 0;
      out.push({
        name: `${prefix}${r}`,
        type: "file",
        mode: exec ? 0o755 : 0o644,
        file: abs,
      });
    }
  }
}

function fileEntry(name: string, data: string | Buffer): TarEntry {
  return {
    name,
    type: "file",
    mode: 0o644,
    data: Buffer.isBuffer(data) ? data : Buffer.from(data),
  };
}

export function tarStream(entries: TarEntry[]): Readable {
  return Readable.from(
    (async function* () {
      for (const e of entries) {
        if (e.type === "file" && !e.data) yield* tarChunks({ ...e, data: await readFile(e.file!) });
        else yield* tarChunks(e);
      }
      yield Buffer.alloc(1024, 0);
    })(),
  );
}

// ------------------------------------------------------------------ hashing

async function hashTree(dir: string, h: ReturnType<typeof createHash>, rel = ""): Promise<void> {
  for (const name of (await readdir(path.join(dir, rel))).sort()) {
    if (name === "__pycache__" || name.endsWith(".pyc")) continue;
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(path.join(dir, r));
    if (st.isDirectory()) await hashTree(dir, h, r);
    else if (st.isFile())
      h.update(r)
        .update("\0")
        .update(await readFile(path.join(dir, r)))
        .update("\0");
  }
}

let runnerHashMemo: Promise<string> | undefined;

/** Content hash of the runner package + its requirements: part of every image tag. */
export function runnerVersion(): Promise<string> {
  runnerHashMemo ??= (async () => {
    const h = createHash("sha256");
    await hashTree(path.join(RUNNER_DIR, "iac_runner"), h);
    h.update(await runnerRequirements());
    return h.digest("hex").slice(0, 16);
  })();
  return runnerHashMemo;
}

async function baseImageId(docker: Docker, image: string): Promise<string> {
  try {
    return (await docker.getImage(image).inspect()).Id;
  } catch {
    return "absent";
  }
}

export function sourceUrl(config: Pick<Config, "github">, slug: Slug): string {
  if (slug.kind === "github") return `${config.github.serverUrl}/${slug.owner}/${slug.repo}`;
  if (slug.kind === "git") return slug.location ?? slug.raw;
  return `file://${slug.location ?? slug.repo}`;
}

// ------------------------------------------------------------------ build

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
}

interface BuildMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  const { config, service, slug, source, entrypoint } = opts;
  const emit = (line: string) => opts.onEvent?.(logEvent("build", line, service));
  const docker = opts.docker ?? dockerClient(config);
  const template = await readFile(TEMPLATE_FILE, "utf8");
  const dockerfile = renderDockerfile(template, entrypoint);
  const app = await appRequirements(source, entrypoint);
  for (const w of app.warnings) emit(`warning: ${w}`);

  const baseId = await baseImageId(docker, config.baseImage);
  if (baseId === "absent") {
    emit(
      `base image ${config.baseImage} is not present locally: Docker will try to pull it ` +
        "(offline? run `make bootstrap` and set IAC_BASE_IMAGE=iac-local/python:3.11-slim)",
    );
  }
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
    config.pipIndexUrl ?? "",
    JSON.stringify(Object.entries(opts.labels ?? {}).sort()),
  ]) {
    h.update(part).update("\0");
  }
  const tag = `iac/${service}:${h.digest("hex").slice(0, 20)}`;

  try {
    const existing = await docker.getImage(tag).inspect();
    emit(`image ${tag} exists; build skipped`);
    return { tag, id: existing.Id, built: false };
  } catch {
    // not built yet
  }

  const runnerWheels = await runnerWheelhouse(config, { signal: opts.signal, onLine: emit });
  const appWheels = app.text
    ? await ensureWheelhouse(config, "app", app.text, { signal: opts.signal, onLine: emit })
    : undefined;

  const rules = existsSync(path.join(source.dir, ".dockerignore"))
    ? parseDockerignore(await readFile(path.join(source.dir, ".dockerignore"), "utf8"))
    : [];
  const entries: TarEntry[] = [
    fileEntry(DOCKERFILE_NAME, dockerfile),
    { name: "iac", type: "dir", mode: 0o755 },
    { name: "iac/wheels", type: "dir", mode: 0o755 },
    { name: "iac/wheels/runner", type: "dir", mode: 0o755 },
    { name: "iac/wheels/app", type: "dir", mode: 0o755 },
    { name: "iac/runner", type: "dir", mode: 0o755 },
    fileEntry("iac/runner/requirements.txt", await runnerRequirements()),
    fileEntry("iac/app-requirements.txt", app.text),
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
  for (const f of appWheels?.files ?? []) {
    entries.push({
      name: `iac/wheels/app/${f}`,
      type: "file",
      mode: 0o644,
      file: path.join(appWheels!.dir, f),
    });
  }
  await collectDir(path.join(RUNNER_DIR, "iac_runner"), "iac/runner/iac_runner/", [], entries);
  await collectDir(source.dir, "app/", rules, entries);

  const buildargs: Record<string, string> = {
    BASE_IMAGE: config.baseImage,
    PIP_INDEX_URL: config.pipIndexUrl ?? "",
    INSTALL_PROJECT: entrypoint.installProject ? "1" : "0",
    IAC_SERVICE: service,
    IAC_SLUG: slug.raw,
    IAC_COMMIT: source.commit,
    IAC_ENTRYPOINT: JSON.stringify(entrypoint.argv),
    IAC_ENTRYPOINT_KIND: entrypoint.kind,
    IAC_SOURCE_URL: sourceUrl(config, slug),
  };
  emit(`building ${tag} FROM ${config.baseImage} (${entries.length} context entries)`);
  const stream = await docker.buildImage(tarStream(entries), {
    t: tag,
    dockerfile: DOCKERFILE_NAME,
    buildargs,
    labels: opts.labels,
    rm: true,
    forcerm: true,
    nocache: opts.noCache ?? false,
    abortSignal: opts.signal,
  } as Docker.ImageBuildOptions);

  const last: string[] = [];
  let step: string | undefined;
  let failure: string | undefined;
  let id: string | undefined;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (msg: BuildMessage) => {
        if (msg.error) failure = msg.errorDetail?.message ?? msg.error;
        if (msg.aux?.ID) id = msg.aux.ID;
        const text = msg.stream ?? msg.status ?? msg.error;
        if (!text) return;
        for (const line of text.split(/\r?\n/)) {
          if (!line.trim()) continue;
          if (/^Step \d+\/\d+ : /.test(line)) step = line;
          last.push(line);
          if (last.length > 30) last.shift();
          emit(line);
        }
      },
    );
  }).catch((err: Error) => {
    failure ??= err.message;
  });
  if (failure) {
    throw new BuildError(
      `image build for ${service} failed${step ? ` at ${step}` : ""}: ${failure}\n--- last build output ---\n${last.slice(-12).join("\n")}`,
      step,
      last,
      baseId === "absent"
        ? `the base image ${config.baseImage} is not present locally and could not be pulled: ` +
            "run `make bootstrap` (builds iac-local/python:3.11-slim offline) and set IAC_BASE_IMAGE=iac-local/python:3.11-slim"
        : "see the build output above; set IAC_BASE_IMAGE to an image with python3 and python3-venv",
    );
  }
  const inspected = await docker.getImage(tag).inspect();
  return { tag, id: id ?? inspected.Id, built: true };
}
