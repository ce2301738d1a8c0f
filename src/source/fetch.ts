// Slug -> Source {dir, commit}: resolve the ref to a full commit SHA, then take the tree from
// the cache, the GitHub tarball endpoint, or (when that path fails) a shallow git fetch.
// Trees are extracted with safety rules (no absolute paths, no '..', no links leaving the tree,
// no device files, capped size and file count) into a temp dir and renamed into
// `${cacheDir}/sources/<commit>` only when complete, so the cache never holds half a tree.
// git runs with argv arrays (never a shell), `--` before user-controlled arguments, no prompts.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  lstat,
  mkdir,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  chmod,
  copyFile,
  symlink,
} from "node:fs/promises";
import path from "node:path";
import { PassThrough, Readable, Transform } from "node:stream";
import { Unpack, type ReadEntry } from "tar";
import { childEnv, type Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import { type EventSink, logEvent, noopSink } from "../kernel/events.js";
import { isFullSha } from "../intake/slug.js";
import type { Slug, Source } from "../kernel/types.js";

export type FetchFailure =
  | "not-found"
  | "ref-not-found"
  | "auth"
  | "rate-limited"
  | "timeout"
  | "network"
  | "server-error"
  | "unsafe-archive"
  | "too-large"
  | "subdir-not-found"
  | "git-failed"
  | "aborted";

export class FetchError extends IacError {
  override name = "FetchError";
  constructor(
    readonly reason: FetchFailure,
    message: string,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

export interface FetchOptions {
  config: Config;
  service?: string;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

interface Limits {
  maxBytes: number;
  maxFiles: number;
}

interface Ctx {
  slug: Slug;
  config: Config;
  log: (line: string) => void;
  signal?: AbortSignal;
  limits: Limits;
}

const sourcesDir = (config: Config) => path.join(config.cacheDir, "sources");
const tmpName = (prefix: string) =>
  `.tmp-${prefix}-${process.pid}-${randomBytes(4).toString("hex")}`;

function timeoutSignal(ctx: Ctx): AbortSignal {
  const t = AbortSignal.timeout(ctx.config.fetch.timeoutMs);
  return ctx.signal ? AbortSignal.any([ctx.signal, t]) : t;
}

function isTimeout(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === "TimeoutError" || (err.cause as Error | undefined)?.name === "TimeoutError")
  );
}

// ---------------------------------------------------------------------------------------------
// git

interface GitResult {
  stdout: Buffer;
  stderr: string;
}

export class GitError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

function gitEnv(config: Config, authUrl?: string): Record<string, string> {
  const env = childEnv({
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_PROTOCOL: "version=2",
    LC_ALL: "C",
  });
  if (authUrl && config.github.token) {
    // The token goes in the environment (not argv, where `ps` would show it), scoped to the server.
    const basic = Buffer.from(`x-access-token:${config.github.token}`).toString("base64");
    env.GIT_CONFIG_COUNT = "1";
    env.GIT_CONFIG_KEY_0 = `http.${authUrl}/.extraHeader`;
    env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${basic}`;
  }
  return env;
}

const GIT_SAFETY = [
  "-c",
  "protocol.allow=never",
  "-c",
  "protocol.https.allow=always",
  "-c",
  "protocol.http.allow=always",
  "-c",
  "core.hooksPath=/dev/null",
];

const SUBCOMMANDS = new Set([
  "init",
  "fetch",
  "ls-remote",
  "archive",
  "rev-parse",
  "status",
  "ls-files",
  "cat-file",
]);

/** Runs git with an argv array. stdout is buffered unless `opts.stdout` takes it as a stream. */
export function runGit(
  args: string[],
  opts: {
    cwd?: string;
    env: Record<string, string>;
    timeoutMs: number;
    signal?: AbortSignal;
    stdout?: (s: Readable) => void;
  },
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", [...GIT_SAFETY, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group, so a timeout kills git's helpers (git-remote-http) too; otherwise
      // they keep the pipes open and the call never returns.
      detached: true,
    });
    const killTree = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, opts.timeoutMs);
    const onAbort = () => killTree();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const out: Buffer[] = [];
    let err = "";
    if (opts.stdout) {
      // Pipe synchronously: Node resumes (and discards) unconsumed stdio when a child exits,
      // so a consumer that attaches after an await could lose a fast process's whole output.
      const pass = new PassThrough({ highWaterMark: 1024 * 1024 });
      child.stdout.pipe(pass);
      opts.stdout(pass);
    } else child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => {
      if (err.length < 64 * 1024) err += d.toString("utf8");
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new GitError(`cannot run git: ${e.message}`, "", false));
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else {
        const why = timedOut
          ? `timed out after ${opts.timeoutMs / 1000}s`
          : opts.signal?.aborted
            ? "aborted"
            : `exit ${code ?? sig}`;
        reject(
          new GitError(
            `git ${args.find((a) => SUBCOMMANDS.has(a)) ?? ""} failed (${why}): ${lastLines(err)}`,
            err,
            timedOut,
          ),
        );
      }
    });
  });
}

function lastLines(s: string, n = 3): string {
  return s.trim().split("\n").slice(-n).join(" | ");
}

// ---------------------------------------------------------------------------------------------
// safe extraction

/** Counts bytes flowing through and fails past `max`. */
function byteCap(max: number, onOver: () => Error): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > max) cb(onOver());
      else cb(null, chunk);
    },
  });
}

/**
 * Extracts a tar (optionally gzipped) stream whose entries all live under one top-level folder
 * into `parent`, enforcing the safety rules. Returns the extracted top folder's path.
 * On any violation it throws FetchError (unsafe-archive / too-large); the caller removes `parent`.
 */
export async function extractTarSafely(
  input: Readable,
  parent: string,
  limits: Limits,
  label: string,
): Promise<string> {
  await mkdir(parent, { recursive: true });
  let problem: FetchError | undefined;
  let top: string | undefined;
  let files = 0;
  let bytes = 0;
  const unsafe = (what: string) =>
    new FetchError(
      "unsafe-archive",
      `${label}: refusing the archive: ${what}`,
      "the repository contains content that cannot be extracted safely",
    );
  const tooLarge = (what: string) =>
    new FetchError(
      "too-large",
      `${label}: the archive is too large: ${what}`,
      "raise IAC_MAX_ARCHIVE_BYTES / IAC_MAX_ARCHIVE_FILES if this is expected",
    );
  const cap = byteCap(
    limits.maxBytes,
    () => (problem ??= tooLarge(`more than ${limits.maxBytes} bytes downloaded`)),
  );
  const fail = (e: FetchError) => {
    problem ??= e;
    cap.destroy(problem);
  };

  const filter = (p: string, entry: ReadEntry | { type?: string }): boolean => {
    const e = entry as ReadEntry;
    if (problem) return false;
    files += 1;
    bytes += e.size ?? 0;
    if (files > limits.maxFiles)
      return (fail(tooLarge(`more than ${limits.maxFiles} entries`)), false);
    if (bytes > limits.maxBytes)
      return (fail(tooLarge(`more than ${limits.maxBytes} bytes of files`)), false);
    if (p.includes("\0")) return (fail(unsafe("a path contains a NUL byte")), false);
    if (p.startsWith("/") || /^[A-Za-z]:/.test(p) || p.startsWith("\\"))
      return (fail(unsafe(`absolute path '${p}'`)), false);
    const parts = p.replace(/\/+$/, "").split("/");
    if (parts.some((x) => x === "..")) return (fail(unsafe(`path '${p}' contains '..'`)), false);
    const first = parts[0]!;
    if (first === "" || first === ".")
      return (fail(unsafe(`path '${p}' is not under a top-level folder`)), false);
    if (top === undefined) top = first;
    else if (first !== top)
      return (fail(unsafe(`more than one top-level folder ('${top}', '${first}')`)), false);
    const inner = parts.slice(1).join("/");
    switch (e.type) {
      case "File":
      case "OldFile":
      case "ContiguousFile":
      case "Directory":
        if (e.type !== "Directory" && inner === "")
          return (fail(unsafe(`'${p}' is a file at the top level`)), false);
        return true;
      case "SymbolicLink": {
        const target = e.linkpath ?? "";
        if (inner === "") return (fail(unsafe(`top-level symbolic link '${p}'`)), false);
        if (target === "" || target.includes("\0"))
          return (fail(unsafe(`symbolic link '${p}' has an empty target`)), false);
        if (path.posix.isAbsolute(target) || /^[A-Za-z]:/.test(target))
          return (
            fail(unsafe(`symbolic link '${p}' points to an absolute path '${target}'`)),
            false
          );
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(inner), target));
        if (resolved === ".." || resolved.startsWith("../"))
          return (
            fail(unsafe(`symbolic link '${p}' points outside the tree ('${target}')`)),
            false
          );
        return true;
      }
      case "Link":
        return (fail(unsafe(`hard link '${p}' (not produced by git; refused)`)), false);
      case "CharacterDevice":
      case "BlockDevice":
      case "FIFO":
        return (fail(unsafe(`'${p}' is a device file or FIFO (${e.type})`)), false);
      default:
        return (fail(unsafe(`'${p}' has unsupported entry type ${e.type}`)), false);
    }
  };

  const unpack = new Unpack({
    cwd: parent,
    filter,
    // Warnings are collected here (and refuse the archive) instead of tar's strict mode, so the
    // error names what was wrong in our words.
    strict: false,
    onwarn: (code: string, message: string | Error) => {
      if (code === "TAR_ENTRY_INFO") return;
      const text = typeof message === "string" ? message : message.message;
      problem ??=
        code === "TAR_BAD_ARCHIVE" ? unsafe("not a tar archive") : unsafe(`${code}: ${text}`);
    },
    preserveOwner: false,
    noMtime: true,
    // Mode bits are normalised after extraction; never create setuid/setgid/world-writable files.
    umask: 0o022,
    processUmask: 0o022,
    maxMetaEntrySize: 1024 * 1024,
  } as ConstructorParameters<typeof Unpack>[0]);
  try {
    await new Promise<void>((resolve, reject) => {
      unpack.on("close", () => resolve());
      unpack.on("error", (e: Error) => reject(e));
      cap.on("error", (e: Error) => reject(e));
      input.on("error", (e: Error) => reject(e));
      input.pipe(cap).pipe(unpack as unknown as NodeJS.WritableStream);
    });
  } catch (err) {
    // Stop the producer (git gets EPIPE, a download is cancelled) and let tar finish what it
    // has in flight, so the caller's cleanup does not race with late writes.
    input.destroy();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      unpack.on("close", () => (clearTimeout(t), resolve()));
      try {
        unpack.end();
      } catch {
        clearTimeout(t);
        resolve();
      }
    });
    if (problem) throw problem;
    if (err instanceof FetchError) throw err;
    if (isTimeout(err)) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    // tar's own refusals (e.g. extracting through a symlink) are safety refusals too.
    throw unsafe(`extraction failed: ${msg}`);
  }
  if (problem) throw problem;
  if (top === undefined) throw unsafe("the archive is empty");
  const root = path.join(parent, top);
  await verifyTree(root, limits, label);
  return root;
}

/**
 * Walks an extracted tree: only files, folders and symlinks that resolve inside the tree;
 * normalises modes to 0644/0755 (exec bit kept). Defence in depth behind the entry filter.
 */
export async function verifyTree(root: string, limits: Limits, label: string): Promise<void> {
  const realRoot = await realpath(root);
  let count = 0;
  const unsafe = (what: string) =>
    new FetchError("unsafe-archive", `${label}: refusing the tree: ${what}`);
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      if (++count > limits.maxFiles)
        throw new FetchError("too-large", `${label}: more than ${limits.maxFiles} entries`);
      const st = await lstat(full);
      if (st.isSymbolicLink()) {
        const target = await readlink(full);
        if (path.isAbsolute(target))
          throw unsafe(`symbolic link '${rel}' points to an absolute path`);
        let real: string | undefined;
        try {
          real = await realpath(full);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ELOOP") throw unsafe(`symbolic link '${rel}' loops`);
          real = undefined; // dangling: judged lexically below
        }
        const resolved = real ?? path.resolve(path.dirname(full), target);
        const base = real ? realRoot : root;
        if (resolved !== base && !resolved.startsWith(base + path.sep))
          throw unsafe(`symbolic link '${rel}' points outside the tree`);
      } else if (st.isDirectory()) {
        await chmod(full, 0o755);
        await walk(full);
      } else if (st.isFile()) {
        await chmod(full, st.mode & 0o111 ? 0o755 : 0o644);
      } else {
        throw unsafe(`'${rel}' is not a regular file, folder or symbolic link`);
      }
    }
  };
  await chmod(root, 0o755);
  await walk(root);
}

// ---------------------------------------------------------------------------------------------
// cache

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Moves a complete tree into the cache (atomic rename); keeps an existing entry if one won a race. */
async function commitToCache(tree: string, key: string, config: Config): Promise<string> {
  const dest = path.join(sourcesDir(config), key);
  try {
    await rename(tree, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === "ENOTEMPTY" || code === "EEXIST") && (await exists(dest))) return dest;
    throw err;
  }
  return dest;
}

/** Runs `produce(tmpParent)` -> extracted tree, then renames it into the cache; cleans up always. */
async function intoCache(
  config: Config,
  key: string,
  produce: (tmpParent: string) => Promise<string>,
): Promise<string> {
  const tmp = path.join(sourcesDir(config), tmpName(key.slice(0, 12)));
  try {
    const tree = await produce(tmp);
    return await commitToCache(tree, key, config);
  } finally {
    await rm(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  }
}

async function withSubdir(
  ctx: Ctx,
  root: string,
  commit: string,
  via: Source["via"],
): Promise<Source> {
  let dir = root;
  if (ctx.slug.subdir) {
    dir = path.join(root, ctx.slug.subdir);
    let ok = false;
    try {
      const real = await realpath(dir);
      const realRoot = await realpath(root);
      ok = (await stat(real)).isDirectory() && real.startsWith(realRoot + path.sep);
    } catch {
      ok = false;
    }
    if (!ok)
      throw new FetchError(
        "subdir-not-found",
        `${ctx.slug.raw}: the subdirectory '${ctx.slug.subdir}' does not exist at commit ${commit.slice(0, 12)}`,
        "check the path after '//' in the slug",
      );
  }
  return { dir, root, commit, via };
}

// ---------------------------------------------------------------------------------------------
// GitHub API

function apiHeaders(config: Config, accept: string): Record<string, string> {
  const h: Record<string, string> = {
    Accept: accept,
    "User-Agent": "iac-wrapper",
    "X-GitHub-Api-Version": "2022-11-28",
  };
  if (config.github.token) h.Authorization = `Bearer ${config.github.token}`;
  return h;
}

/** A failure of the tarball path that a git clone might get around (network, 5xx, rate limit). */
class SoftFailure extends Error {}

async function apiGet(ctx: Ctx, url: string, accept: string): Promise<Response> {
  try {
    return await fetch(url, {
      headers: apiHeaders(ctx.config, accept),
      redirect: "follow",
      signal: timeoutSignal(ctx),
    });
  } catch (err) {
    if (ctx.signal?.aborted) throw new FetchError("aborted", `${ctx.slug.raw}: aborted`);
    if (isTimeout(err))
      throw new SoftFailure(`timed out after ${ctx.config.fetch.timeoutMs / 1000}s (${url})`);
    const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
    throw new SoftFailure(
      `cannot reach ${new URL(url).host}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
}

function authHint(config: Config): string {
  return config.github.token
    ? "GITHUB_TOKEN is set but was refused or lacks access to this repository"
    : "if the repository is private, set GITHUB_TOKEN";
}

async function statusError(ctx: Ctx, res: Response, what: string): Promise<Error> {
  const { slug, config } = ctx;
  const body = (await res.text().catch(() => "")).slice(0, 300);
  if (res.status === 401)
    return new FetchError(
      "auth",
      `${slug.raw}: authentication required or token refused (HTTP 401 from ${what})`,
      authHint(config),
    );
  if (res.status === 403 || res.status === 429) {
    if (res.headers.get("x-ratelimit-remaining") === "0" || res.status === 429)
      return new SoftFailure(`rate-limited by the GitHub API (HTTP ${res.status})`);
    return new FetchError(
      "auth",
      `${slug.raw}: access denied (HTTP 403 from ${what})`,
      authHint(config),
    );
  }
  if (res.status >= 500) return new SoftFailure(`HTTP ${res.status} from ${what}`);
  return new FetchError(
    "network",
    `${slug.raw}: unexpected HTTP ${res.status} from ${what}: ${body}`,
  );
}

async function resolveViaApi(ctx: Ctx): Promise<string> {
  const { slug, config } = ctx;
  const repoUrl = `${config.github.apiUrl}/repos/${slug.owner}/${slug.repo}`;
  const ref = slug.ref ?? "HEAD";
  const res = await apiGet(
    ctx,
    `${repoUrl}/commits/${ref.split("/").map(encodeURIComponent).join("/")}`,
    "application/vnd.github.sha",
  );
  if (res.ok) {
    const sha = (await res.text()).trim();
    if (!isFullSha(sha)) throw new SoftFailure(`the commits endpoint returned no SHA for '${ref}'`);
    return sha.toLowerCase();
  }
  if (res.status === 422 || res.status === 404) {
    await res.body?.cancel();
    throw await notFound(ctx, ref, res.status === 422);
  }
  throw await statusError(ctx, res, "the commits endpoint");
}

/** 404/422: tells "ref not found" from "repository not found (or private)" with one more request. */
async function notFound(ctx: Ctx, ref: string, repoKnownToExist: boolean): Promise<FetchError> {
  const { slug, config } = ctx;
  let repoExists = repoKnownToExist;
  if (!repoExists) {
    const r2 = await apiGet(
      ctx,
      `${config.github.apiUrl}/repos/${slug.owner}/${slug.repo}`,
      "application/vnd.github+json",
    );
    await r2.body?.cancel();
    repoExists = r2.ok;
  }
  if (repoExists)
    return new FetchError(
      "ref-not-found",
      `${slug.raw}: ref '${ref}' not found in ${slug.owner}/${slug.repo}`,
      "check the branch, tag or commit after '#'",
    );
  return new FetchError(
    "not-found",
    `${slug.raw}: repository ${slug.owner}/${slug.repo} not found`,
    authHint(config),
  );
}

async function downloadTarball(ctx: Ctx, commit: string): Promise<string> {
  const { slug, config } = ctx;
  const url = `${config.github.apiUrl}/repos/${slug.owner}/${slug.repo}/tarball/${commit}`;
  return intoCache(config, commit, async (tmp) => {
    const res = await apiGet(ctx, url, "application/vnd.github+json");
    if (res.status === 404 || res.status === 422) {
      await res.body?.cancel();
      throw await notFound(ctx, commit, false);
    }
    if (!res.ok || !res.body) throw await statusError(ctx, res, "the tarball endpoint");
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > ctx.limits.maxBytes) {
      await res.body.cancel();
      throw new FetchError(
        "too-large",
        `${slug.raw}: the tarball is ${declared} bytes (limit ${ctx.limits.maxBytes})`,
        "raise IAC_MAX_ARCHIVE_BYTES if this is expected",
      );
    }
    const stream = Readable.fromWeb(
      res.body as import("node:stream/web").ReadableStream<Uint8Array>,
    );
    try {
      return await extractTarSafely(stream, tmp, ctx.limits, slug.raw);
    } catch (err) {
      if (err instanceof FetchError) throw err;
      if (isTimeout(err))
        throw new SoftFailure(`tarball download timed out after ${config.fetch.timeoutMs / 1000}s`);
      throw new SoftFailure(`tarball download failed: ${(err as Error).message}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// git fetch (fallback, git+https slugs)

function classifyGit(ctx: Ctx, err: unknown, what: string): FetchError {
  const slug = ctx.slug;
  if (err instanceof FetchError) return err;
  const e = err as GitError;
  const s = e.stderr ?? "";
  if (e.timedOut)
    return new FetchError(
      "timeout",
      `${slug.raw}: ${what} timed out after ${ctx.config.fetch.timeoutMs / 1000}s`,
      "raise IAC_FETCH_TIMEOUT_S or check the network",
    );
  if (ctx.signal?.aborted) return new FetchError("aborted", `${slug.raw}: aborted`);
  if (
    /could not read Username|Authentication failed|terminal prompts disabled|HTTP 401|HTTP 403|returned error: 40[13]/i.test(
      s,
    )
  )
    return new FetchError(
      "auth",
      `${slug.raw}: ${what}: authentication required`,
      authHint(ctx.config),
    );
  if (/not found|does not appear to be a git repository|returned error: 404/i.test(s))
    return new FetchError(
      "not-found",
      `${slug.raw}: ${what}: repository not found`,
      authHint(ctx.config),
    );
  if (/couldn't find remote ref|not our ref|unadvertised object|no such remote ref/i.test(s))
    return new FetchError(
      "ref-not-found",
      `${slug.raw}: ${what}: ref not found`,
      "check the branch, tag or commit after '#'",
    );
  if (/Could not resolve host|Failed to connect|Connection refused|Couldn't connect/i.test(s))
    return new FetchError("network", `${slug.raw}: ${what}: ${lastLines(s, 1)}`);
  return new FetchError("git-failed", `${slug.raw}: ${e.message}`);
}

function cloneUrl(ctx: Ctx): string {
  const { slug, config } = ctx;
  return slug.kind === "github"
    ? `${config.github.serverUrl}/${slug.owner}/${slug.repo}.git`
    : slug.location!;
}

/** `git ls-remote` -> commit for the slug's ref (branch, then peeled tag, then tag; HEAD when none). */
async function resolveViaGit(ctx: Ctx): Promise<string> {
  const { slug, config } = ctx;
  if (isFullSha(slug.ref)) return slug.ref.toLowerCase();
  const url = cloneUrl(ctx);
  const ref = slug.ref ?? "HEAD";
  let out: GitResult;
  try {
    out = await runGit(["ls-remote", "--", url, ref], {
      env: gitEnv(config, slug.kind === "github" ? config.github.serverUrl : undefined),
      timeoutMs: config.fetch.timeoutMs,
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifyGit(ctx, err, "git ls-remote");
  }
  const refs = new Map<string, string>();
  for (const line of out.stdout.toString("utf8").split("\n")) {
    const [sha, name] = line.split("\t");
    if (sha && name) refs.set(name, sha);
  }
  const candidates =
    ref === "HEAD"
      ? ["HEAD"]
      : [`refs/heads/${ref}`, `refs/tags/${ref}^{}`, `refs/tags/${ref}`, ref];
  for (const c of candidates) {
    const sha = refs.get(c);
    if (sha && isFullSha(sha)) return sha.toLowerCase();
  }
  throw new FetchError(
    "ref-not-found",
    `${slug.raw}: ref '${ref}' not found on ${url}`,
    /^[0-9a-f]{4,39}$/i.test(ref)
      ? "abbreviated SHAs cannot be resolved over git; use the full 40-character SHA"
      : "check the branch, tag or commit after '#'",
  );
}

async function cloneAtCommit(ctx: Ctx, commit: string): Promise<string> {
  const { slug, config } = ctx;
  const url = cloneUrl(ctx);
  const env = gitEnv(config, slug.kind === "github" ? config.github.serverUrl : undefined);
  const common = { env, timeoutMs: config.fetch.timeoutMs, signal: ctx.signal };
  return intoCache(config, commit, async (tmp) => {
    const gitDir = path.join(tmp, "git");
    await mkdir(gitDir, { recursive: true });
    const git = (args: string[], extra: Partial<Parameters<typeof runGit>[1]> = {}) =>
      runGit(["--git-dir", gitDir, ...args], { ...common, ...extra });
    await git(["init", "--bare", "--quiet"]);
    try {
      await git(["fetch", "--depth", "1", "--no-tags", "--quiet", "--", url, commit]);
    } catch (first) {
      // Servers that refuse to serve a SHA directly: fetch the ref by name, then check it still
      // points at the commit we resolved (the result must not depend on timing).
      if (!slug.ref || isFullSha(slug.ref)) throw classifyGit(ctx, first, "git fetch");
      try {
        await git(["fetch", "--depth", "1", "--no-tags", "--quiet", "--", url, slug.ref]);
      } catch (err) {
        throw classifyGit(ctx, err, "git fetch");
      }
      const got = (await git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"])).stdout
        .toString()
        .trim();
      if (got !== commit)
        throw new FetchError(
          "ref-not-found",
          `${slug.raw}: '${slug.ref}' moved to ${got.slice(0, 12)} while fetching ${commit.slice(0, 12)}`,
          "retry",
        );
    }
    return archiveInto(ctx, ["--git-dir", gitDir], commit, tmp, common);
  });
}

/** `git archive <commit>` streamed into the safe extractor; git's own failure is reported first. */
async function archiveInto(
  ctx: Ctx,
  where: string[],
  commit: string,
  tmp: string,
  common: { env: Record<string, string>; timeoutMs: number; signal?: AbortSignal },
): Promise<string> {
  let extracted: Promise<string> | undefined;
  const archive = runGit([...where, "archive", "--format=tar", "--prefix=tree/", commit], {
    ...common,
    stdout: (s) => {
      extracted = extractTarSafely(s, path.join(tmp, "x"), ctx.limits, ctx.slug.raw);
    },
  });
  const [g, x] = await Promise.allSettled([archive, extracted!]);
  const emptyOutput =
    x.status === "rejected" &&
    /not a tar archive|archive is empty|Unrecognized archive format/.test(
      String(x.reason?.message),
    );
  if (x.status === "rejected" && !emptyOutput) throw x.reason; // git then failed only because we stopped reading
  if (g.status === "rejected") throw classifyGit(ctx, g.reason, "git archive");
  if (x.status === "rejected") throw x.reason;
  return x.value;
}

// ---------------------------------------------------------------------------------------------
// file: slugs

async function fetchLocal(ctx: Ctx): Promise<Source> {
  const { slug, config, log } = ctx;
  const loc = slug.location!;
  let st;
  try {
    st = await stat(loc);
  } catch {
    throw new FetchError(
      "not-found",
      `${slug.raw}: folder ${loc} not found`,
      "file: paths are relative to the repos file's folder",
    );
  }
  if (!st.isDirectory()) throw new FetchError("not-found", `${slug.raw}: ${loc} is not a folder`);
  const env = gitEnv(config);
  const common = { env, timeoutMs: config.fetch.timeoutMs, signal: ctx.signal };
  let top: string | undefined;
  try {
    top = (await runGit(["-C", loc, "rev-parse", "--show-toplevel"], common)).stdout
      .toString("utf8")
      .trim();
  } catch {
    top = undefined;
  }
  if (top) {
    const rel = path.relative(await realpath(top), await realpath(loc));
    const relSpec = rel === "" ? "." : rel;
    let commit: string | undefined;
    let why = "";
    try {
      commit = (
        await runGit(
          [
            "-C",
            top,
            "rev-parse",
            "--verify",
            "--end-of-options",
            `${slug.ref ?? "HEAD"}^{commit}`,
          ],
          common,
        )
      ).stdout
        .toString("utf8")
        .trim();
    } catch (err) {
      if (slug.ref)
        throw new FetchError(
          "ref-not-found",
          `${slug.raw}: ref '${slug.ref}' not found in ${top}`,
          `${(err as GitError).stderr?.trim() ?? ""}`.slice(0, 200) || undefined,
        );
      why = "the repository has no commits yet";
    }
    if (commit && !slug.ref) {
      const dirty =
        (
          await runGit(
            ["-C", top, "status", "--porcelain", "--untracked-files=all", "--", relSpec],
            common,
          )
        ).stdout.length > 0;
      if (dirty) {
        why = `uncommitted changes under ${relSpec}`;
        commit = undefined;
      } else if (rel !== "") {
        try {
          await runGit(["-C", top, "cat-file", "-e", `${commit}:${rel}`], common);
        } catch {
          why = `${relSpec} is not in commit ${commit.slice(0, 12)} (ignored or never committed)`;
          commit = undefined;
        }
      }
    }
    if (commit) {
      const key = commit;
      const cached = path.join(sourcesDir(config), key);
      let via: Source["via"] = "cache";
      if (await exists(cached)) log(`cache: commit ${key.slice(0, 12)} already extracted`);
      else {
        log(`local: git archive of ${top} at ${slug.ref ?? "HEAD"} (${key.slice(0, 12)})`);
        via = "local";
        await intoCache(config, key, async (tmp) => {
          return archiveInto(ctx, ["-C", top!], key, tmp, common);
        });
      }
      const subCtx = {
        ...ctx,
        slug: { ...slug, subdir: [rel, slug.subdir].filter(Boolean).join("/") || undefined },
      };
      return withSubdir(subCtx, cached, key, via);
    }
    // Work tree with uncommitted changes: copy what git would track (tracked + untracked, not ignored).
    const listed = (
      await runGit(
        ["-C", loc, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
        common,
      )
    ).stdout
      .toString("utf8")
      .split("\0")
      .filter(Boolean);
    log(`local: ${why}; copying the folder as is`);
    return copyLocal(
      ctx,
      loc,
      listed.length > 0 ? [...new Set(listed)].sort() : await listFolder(loc),
    );
  }
  if (slug.ref)
    throw new FetchError(
      "ref-not-found",
      `${slug.raw}: '#${slug.ref}' needs a git repository, but ${loc} is not in a git work tree`,
      "drop the #ref, or point file: at a git work tree",
    );
  log(`local: ${loc} is not in a git work tree; copying the folder`);
  return copyLocal(ctx, loc, await listFolder(loc));
}

const SKIP = new Set([
  ".git",
  "node_modules",
  ".venv",
  "venv",
  "__pycache__",
  ".mypy_cache",
  ".pytest_cache",
  ".ruff_cache",
  ".tox",
]);

async function listFolder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      if (SKIP.has(name) || name.endsWith(".pyc")) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(path.join(root, r));
      if (st.isDirectory()) await walk(r);
      else out.push(r);
    }
  };
  await walk("");
  return out;
}

/** Copies the listed files (sorted relative paths) into the cache keyed by a content hash. */
async function copyLocal(ctx: Ctx, loc: string, files: string[]): Promise<Source> {
  const { slug, config, limits } = ctx;
  if (files.length > limits.maxFiles)
    throw new FetchError("too-large", `${slug.raw}: more than ${limits.maxFiles} files`);
  const realLoc = await realpath(loc);
  const hash = createHash("sha256");
  let bytes = 0;
  const entries: { rel: string; kind: "file" | "link"; exec: boolean; target?: string }[] = [];
  for (const rel of files) {
    const full = path.join(loc, rel);
    let st;
    try {
      st = await lstat(full);
    } catch {
      continue; // listed by git but deleted in the work tree
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(full);
      const resolved = path.resolve(path.dirname(path.join(realLoc, rel)), target);
      if (
        path.isAbsolute(target) ||
        !(resolved === realLoc || resolved.startsWith(realLoc + path.sep))
      )
        throw new FetchError(
          "unsafe-archive",
          `${slug.raw}: symbolic link '${rel}' points outside the folder`,
        );
      hash.update(`L\0${rel}\0${target}\0`);
      entries.push({ rel, kind: "link", exec: false, target });
    } else if (st.isFile()) {
      bytes += st.size;
      if (bytes > limits.maxBytes)
        throw new FetchError("too-large", `${slug.raw}: more than ${limits.maxBytes} bytes`);
      const exec = (st.mode & 0o111) !== 0;
      hash.update(`F\0${rel}\0${exec ? 1 : 0}\0${st.size}\0`);
      for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer);
      entries.push({ rel, kind: "file", exec });
    } else if (!st.isDirectory()) {
      throw new FetchError(
        "unsafe-archive",
        `${slug.raw}: '${rel}' is not a regular file, folder or symbolic link`,
      );
    }
  }
  const key = `local-${hash.digest("hex").slice(0, 40)}`;
  const cached = path.join(sourcesDir(config), key);
  if (await exists(cached)) {
    ctx.log(`cache: ${key} already copied`);
    return withSubdir(ctx, cached, key, "cache");
  }
  await intoCache(config, key, async (tmp) => {
    const tree = path.join(tmp, "tree");
    await mkdir(tree, { recursive: true });
    for (const e of entries) {
      const dest = path.join(tree, e.rel);
      await mkdir(path.dirname(dest), { recursive: true });
      if (e.kind === "link") await symlink(e.target!, dest);
      else {
        await copyFile(path.join(loc, e.rel), dest);
        await chmod(dest, e.exec ? 0o755 : 0o644);
      }
    }
    await verifyTree(tree, limits, slug.raw);
    return tree;
  });
  return withSubdir(ctx, cached, key, "local");
}

// ---------------------------------------------------------------------------------------------

/** Fetches the slug's tree at its resolved commit (cached by commit). Errors name the slug. */
export async function fetchSource(slug: Slug, opts: FetchOptions): Promise<Source> {
  const { config } = opts;
  const sink = opts.onEvent ?? noopSink;
  const ctx: Ctx = {
    slug,
    config,
    signal: opts.signal,
    log: (line) => sink(logEvent("fetch", line, opts.service)),
    limits: { maxBytes: config.fetch.maxArchiveBytes, maxFiles: config.fetch.maxArchiveFiles },
  };
  await mkdir(sourcesDir(config), { recursive: true });
  if (slug.kind === "file") return fetchLocal(ctx);

  // 1. resolve the ref to a commit
  let commit: string;
  let apiProblem: string | undefined;
  if (isFullSha(slug.ref)) commit = slug.ref.toLowerCase();
  else if (slug.kind === "github") {
    try {
      commit = await resolveViaApi(ctx);
    } catch (err) {
      if (!(err instanceof SoftFailure)) throw err;
      apiProblem = err.message;
      ctx.log(`resolve: GitHub API failed (${apiProblem}); resolving with git ls-remote`);
      commit = await resolveViaGit(ctx);
    }
  } else commit = await resolveViaGit(ctx);
  ctx.log(`resolve: ${slug.ref ?? "HEAD"} -> ${commit}`);

  // 2. cache
  const cached = path.join(sourcesDir(config), commit);
  if (await exists(cached)) {
    ctx.log(`cache: commit ${commit.slice(0, 12)} already fetched, no download`);
    return withSubdir(ctx, cached, commit, "cache");
  }

  // 3. tarball (GitHub), else shallow git fetch
  if (slug.kind === "github" && !apiProblem) {
    try {
      ctx.log(`tarball: downloading ${slug.owner}/${slug.repo}@${commit.slice(0, 12)}`);
      const root = await downloadTarball(ctx, commit);
      return withSubdir(ctx, root, commit, "tarball");
    } catch (err) {
      if (!(err instanceof SoftFailure)) throw err;
      ctx.log(`clone: tarball failed (${err.message}); falling back to a shallow git clone`);
    }
  } else if (slug.kind === "github") {
    ctx.log(`clone: skipping the tarball (GitHub API failed: ${apiProblem}); shallow git clone`);
  } else {
    ctx.log(`clone: shallow git fetch of ${slug.location} (git+ slug)`);
  }
  try {
    const root = await cloneAtCommit(ctx, commit);
    return withSubdir(ctx, root, commit, "clone");
  } catch (err) {
    if (err instanceof FetchError) throw err;
    throw classifyGit(ctx, err, "git clone");
  }
}
