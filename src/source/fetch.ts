// Slug -> Source {dir, commit}: resolve the ref to a full commit SHA, then take the tree from
// the cache, the GitHub tarball endpoint, or (when that path fails) a shallow git fetch.
// The steps live next to this file: github.ts, git.ts, extract.ts (safety rules), cache.ts,
// local.ts (`file:` slugs); this file only orders them.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { logEvent, noopSink } from "../kernel/events.js";
import { isFullSha } from "../intake/slug.js";
import type { Slug, Source } from "../kernel/types.js";
import { type Ctx, FetchError, type FetchOptions, sourcesDir } from "./context.js";
import { classifyGit, cloneAtCommit, resolveViaGit } from "./git.js";
import { exists, withSubdir } from "./cache.js";
import { SoftFailure, downloadTarball, resolveViaApi } from "./github.js";
import { fetchLocal } from "./local.js";
import { hostPolicy } from "./netpolicy.js";
export { FetchError, type FetchFailure, type FetchOptions } from "./context.js";

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
    pin: [],
  };
  await mkdir(sourcesDir(config), { recursive: true });
  if (slug.kind === "file") return fetchLocal({ ...ctx, slug });
  if (slug.kind === "git") ctx.pin = await hostPolicy(ctx, slug.location);

  // 1. resolve the ref to a commit
  let commit: string;
  let apiProblem: string | undefined;
  if (isFullSha(slug.ref)) commit = slug.ref.toLowerCase();
  else if (slug.kind === "github") {
    try {
      commit = await resolveViaApi({ ...ctx, slug });
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
      const root = await downloadTarball({ ...ctx, slug }, commit);
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
