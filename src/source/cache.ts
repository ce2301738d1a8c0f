// The source cache: complete trees renamed into `${cacheDir}/sources/<commit>` only when
// complete (so the cache never holds half a tree), and the slug's subdirectory of a tree.
import { rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import type { Source } from "../kernel/types.js";
import { type Ctx, FetchError, sourcesDir, tmpName } from "./context.js";
import { resolveInside } from "../detect/tree.js";

export async function exists(p: string): Promise<boolean> {
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
export async function intoCache(
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

export async function withSubdir(
  ctx: Ctx,
  root: string,
  commit: string,
  via: Source["via"],
): Promise<Source> {
  let dir = root;
  if (ctx.slug.subdir) {
    // Resolved inside the root, links followed virtually (detect/tree.ts), like every read.
    let ok = false;
    try {
      const parts = await resolveInside(root, ctx.slug.subdir);
      ok = parts !== undefined && (await stat(path.join(root, ...parts))).isDirectory();
      if (ok) dir = path.join(root, ...parts!);
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
