// git, run safely: argv arrays (never a shell), `--` before user-controlled arguments, no
// prompts, no hooks. Used to resolve refs (ls-remote) and as the shallow-fetch fallback when
// the GitHub tarball path fails (and for git+https slugs).
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { childEnv, type Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import { type ProcessResult, runProcess } from "../platform/exec.js";
import { isFullSha } from "../intake/slug.js";
import { type Ctx, FetchError } from "./context.js";
import { extractTarSafely } from "./extract.js";
import { intoCache } from "./cache.js";
import { authHint } from "./github.js";

interface GitResult {
  stdout: Buffer;
  stderr: string;
}

/** A git command failed; classifyGit turns it into a FetchError naming the slug. */
export class GitError extends IacError {
  override name = "GitError";
  constructor(
    message: string,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

export function gitEnv(config: Config, authUrl?: string): Record<string, string> {
  const env = childEnv({
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    // Isolated from the user's and the system's git config (url.insteadOf, credential helpers,
    // LFS filters, fsmonitor): every fetch behaves the same for every user.
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_ATTR_NOSYSTEM: "1",
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
  "-c",
  "core.fsmonitor=false",
  "-c",
  "core.untrackedCache=false",
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
export async function runGit(
  args: string[],
  opts: {
    cwd?: string;
    env: Record<string, string>;
    timeoutMs: number;
    signal?: AbortSignal;
    stdout?: (s: Readable) => void;
  },
): Promise<GitResult> {
  const what = args.find((a) => SUBCOMMANDS.has(a)) ?? "";
  let res: ProcessResult;
  try {
    res = await runProcess(["git", ...GIT_SAFETY, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      stdout: opts.stdout ?? "capture",
      tailLines: 400,
    });
  } catch (e) {
    throw new GitError(`cannot run git: ${(e as Error).message}`, "", false);
  }
  const stderr = res.output.join("\n");
  if (res.code === 0 && !res.aborted) return { stdout: res.stdout, stderr };
  const why = res.timedOut
    ? `timed out after ${opts.timeoutMs / 1000}s`
    : res.aborted
      ? "aborted"
      : `exit ${res.code ?? res.signal}`;
  throw new GitError(`git ${what} failed (${why}): ${lastLines(stderr)}`, stderr, res.timedOut);
}

function lastLines(s: string, n = 3): string {
  return s.trim().split("\n").slice(-n).join(" | ");
}

// ---------------------------------------------------------------------------------------------
// git fetch (fallback, git+https slugs)

export function classifyGit(ctx: Ctx, err: unknown, what: string): FetchError {
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
    : slug.location;
}

/** `git ls-remote` -> commit for the slug's ref (branch, then peeled tag, then tag; HEAD when none). */
export async function resolveViaGit(ctx: Ctx): Promise<string> {
  const { slug, config } = ctx;
  if (isFullSha(slug.ref)) return slug.ref.toLowerCase();
  const url = cloneUrl(ctx);
  const ref = slug.ref ?? "HEAD";
  let out: GitResult;
  try {
    out = await runGit([...ctx.pin, "ls-remote", "--", url, ref], {
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

export async function cloneAtCommit(ctx: Ctx, commit: string): Promise<string> {
  const { slug, config } = ctx;
  const url = cloneUrl(ctx);
  const env = gitEnv(config, slug.kind === "github" ? config.github.serverUrl : undefined);
  const common = { env, timeoutMs: config.fetch.timeoutMs, signal: ctx.signal };
  return intoCache(config, commit, async (tmp) => {
    const gitDir = path.join(tmp, "git");
    await mkdir(gitDir, { recursive: true });
    const git = (args: string[], extra: Partial<Parameters<typeof runGit>[1]> = {}) =>
      runGit(["--git-dir", gitDir, ...ctx.pin, ...args], { ...common, ...extra });
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
export async function archiveInto(
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
