// GitHub REST: resolve a ref to a commit and download the commit's tarball (codeload).
// Soft failures (rate limit, network, 5xx) let fetch fall back to git; hard ones name the slug.
import { Readable } from "node:stream";
import type { Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import type { GitHubSlug } from "../kernel/types.js";
import { isFullSha } from "../intake/slug.js";
import { SystemFaultError } from "../platform/syserror.js";
import { type Ctx, FetchError, isTimeout, timeoutSignal } from "./context.js";
import { extractTarSafely } from "./extract.js";
import { intoCache } from "./cache.js";

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
/** A GitHub API failure that lets fetch fall back to git (never leaves source/). */
export class SoftFailure extends IacError {
  override name = "SoftFailure";
}

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

export function authHint(config: Config): string {
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

export async function resolveViaApi(ctx: Ctx<GitHubSlug>): Promise<string> {
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
async function notFound(
  ctx: Ctx<GitHubSlug>,
  ref: string,
  repoKnownToExist: boolean,
): Promise<FetchError> {
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

export async function downloadTarball(ctx: Ctx<GitHubSlug>, commit: string): Promise<string> {
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
      // A full disk or a read-only cache would fail the clone just the same: said at once.
      if (err instanceof FetchError || err instanceof SystemFaultError) throw err;
      if (isTimeout(err))
        throw new SoftFailure(`tarball download timed out after ${config.fetch.timeoutMs / 1000}s`);
      throw new SoftFailure(`tarball download failed: ${(err as Error).message}`);
    }
  });
}
