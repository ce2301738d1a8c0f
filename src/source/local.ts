// `file:` slugs: a local folder (a git work tree or a plain directory) copied into the cache.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  lstat,
  mkdir,
  readdir,
  readlink,
  realpath,
  stat,
  chmod,
  copyFile,
  readFile,
  rm,
  symlink,
} from "node:fs/promises";
import path from "node:path";
import type { FileSlug, Source } from "../kernel/types.js";
import { writeFileAtomic } from "../platform/fs.js";
import { type Ctx, FetchError, sourcesDir, tmpName } from "./context.js";
import { GitError, archiveInto, gitEnv, runGit } from "./git.js";
import { verifyTree } from "./extract.js";
import { exists, intoCache, withSubdir } from "./cache.js";

export async function fetchLocal(ctx: Ctx<FileSlug>): Promise<Source> {
  const { slug, config, log } = ctx;
  const loc = slug.location;
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
  const wt = await findWorkTree(loc);
  if (wt) {
    // git never runs with the target repository's own config, hooks or attributes-driven
    // filters (core.fsmonitor, filter.*.smudge/clean/process, hooks would run commands on the
    // host): its objects and refs are fetched into a throwaway "shadow" git dir of ours
    // (upload-pack reads objects only), and every other command runs against that git dir,
    // with the user's work tree (and a copy of its index) only where a work tree is needed.
    const shadow = path.join(sourcesDir(config), tmpName("shadow"));
    try {
      return await fetchLocalGit(ctx, loc, wt, shadow, common);
    } finally {
      await rm(shadow, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    }
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

interface WorkTree {
  top: string;
  gitDir: string;
}

/** The git work tree holding `loc`, found by walking up to a `.git` (git itself is not asked). */
async function findWorkTree(loc: string): Promise<WorkTree | undefined> {
  let dir = await realpath(loc);
  for (;;) {
    const dotGit = path.join(dir, ".git");
    let st;
    try {
      st = await lstat(dotGit);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) return { top: dir, gitDir: dotGit };
    if (st?.isFile()) {
      // A linked work tree or submodule: `gitdir: <path>`.
      const m = /^gitdir:\s*(.+?)\s*$/m.exec(await readFile(dotGit, "utf8"));
      if (m) return { top: dir, gitDir: path.resolve(dir, m[1]!) };
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

async function fetchLocalGit(
  ctx: Ctx,
  loc: string,
  wt: WorkTree,
  shadow: string,
  common: { env: Record<string, string>; timeoutMs: number; signal?: AbortSignal },
): Promise<Source> {
  const { slug, config, log } = ctx;
  const top = wt.top;
  const sg = (args: string[]) => runGit(["--git-dir", shadow, ...args], common);
  /** The user's work tree seen through the shadow git dir (their config never read). */
  const inTree = (cwd: string, args: string[]) =>
    runGit(
      ["--git-dir", shadow, "--work-tree", top, "-c", "core.bare=false", "-C", cwd, ...args],
      common,
    );
  await runGit(["init", "--bare", "--quiet", "--", shadow], common);
  const fetchRefs = async (withHead: boolean) =>
    sg([
      "-c",
      "protocol.file.allow=always",
      "fetch",
      "--quiet",
      "--no-tags",
      "--",
      top,
      "+refs/heads/*:refs/heads/*",
      "+refs/tags/*:refs/tags/*",
      ...(withHead ? ["+HEAD:refs/iac/HEAD"] : []),
    ]);
  let fetched = true;
  try {
    await fetchRefs(true);
  } catch {
    try {
      await fetchRefs(false); // HEAD unborn or detached elsewhere
    } catch {
      fetched = false;
    }
  }
  const rel = path.relative(top, await realpath(loc));
  const relSpec = rel === "" ? "." : rel;
  let commit: string | undefined;
  let why = "";
  try {
    if (!fetched) throw new GitError("the repository has no commits yet", "", false);
    commit = (
      await sg([
        "rev-parse",
        "--verify",
        "--end-of-options",
        `${slug.ref ?? "refs/iac/HEAD"}^{commit}`,
      ])
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
  // Compare the work tree with HEAD through a copy of the user's index (theirs is not touched).
  await writeFileAtomic(path.join(shadow, "HEAD"), `${commit ?? "0".repeat(40)}\n`);
  for (const [from, to] of [
    ["index", "index"],
    [path.join("info", "exclude"), path.join("info", "exclude")],
  ] as const) {
    try {
      await mkdir(path.dirname(path.join(shadow, to)), { recursive: true });
      await copyFile(path.join(wt.gitDir, from), path.join(shadow, to));
    } catch {
      // none: everything counts as untracked, which makes the tree dirty (copied as is)
    }
  }
  if (commit && !slug.ref) {
    const dirty =
      (await inTree(top, ["status", "--porcelain", "--untracked-files=all", "--", relSpec])).stdout
        .length > 0;
    if (dirty) {
      why = `uncommitted changes under ${relSpec}`;
      commit = undefined;
    } else if (rel !== "") {
      try {
        await sg(["cat-file", "-e", `${commit}:${rel}`]);
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
        return archiveInto(ctx, ["--git-dir", shadow], key, tmp, common);
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
    await inTree(loc, ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."])
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
