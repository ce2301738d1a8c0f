// The one way the host reads a fetched repository (detection, requirements, pyproject,
// setup.cfg, .dockerignore): a SourceTree. Every path is resolved component by component
// inside the tree's root; symbolic links are followed *virtually* (readlink, never the
// kernel), so a link can only ever name something inside the root, wherever the tree lives
// on disk. A link that is absolute, dangling, loops or climbs above the root is refused with
// an error that names the link and never the content. The final open uses O_NOFOLLOW, so a
// link swapped in after the check is refused by the kernel as well.
import { constants, type Stats } from "node:fs";
import { lstat, open, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { IacError } from "../kernel/errors.js";

const MAX_LINKS = 40; // as the kernel's ELOOP limit

export class UnsafeTreeError extends IacError {
  override name = "UnsafeTreeError";
}

function posixParts(p: string): string[] {
  return p.split(/[\\/]+/).filter((x) => x !== "" && x !== ".");
}

/**
 * Resolves `rel` (POSIX, relative to `root`) inside `root`, following symbolic links
 * virtually. Returns the relative parts of the real location (no link among them, the last
 * one excepted when `followLast` is false), or undefined when a component does not exist.
 * Throws UnsafeTreeError when a link is absolute, loops, or the resolution leaves the root.
 */
export async function resolveInside(
  root: string,
  rel: string,
  opts: { followLast?: boolean; label?: string } = {},
): Promise<string[] | undefined> {
  const followLast = opts.followLast ?? true;
  const label = opts.label ?? rel;
  const queue = posixParts(rel);
  const cur: string[] = [];
  let links = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === "..") {
      if (cur.length === 0)
        throw new UnsafeTreeError(
          links > 0
            ? `symbolic link '${label}' resolves outside the repository (followed link by link)`
            : `'${label}' resolves outside the repository (through '..')`,
          "links must point to files inside the repository",
        );
      cur.pop();
      continue;
    }
    const full = path.join(root, ...cur, part);
    let st: Stats;
    try {
      st = await lstat(full);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw err;
    }
    if (st.isSymbolicLink() && (queue.length > 0 || followLast)) {
      if (++links > MAX_LINKS)
        throw new UnsafeTreeError(`'${label}' has too many levels of symbolic links`);
      const target = await readlink(full);
      if (target === "" || path.posix.isAbsolute(target) || /^[A-Za-z]:/.test(target))
        throw new UnsafeTreeError(
          `symbolic link '${[...cur, part].join("/")}' points to an absolute path`,
        );
      queue.unshift(...target.split("/").filter((x) => x !== "" && x !== "."));
      continue; // relative to the link's folder, which is `cur`
    }
    if (queue.length > 0 && !st.isDirectory() && !st.isSymbolicLink()) return undefined;
    cur.push(part);
  }
  return cur;
}

export type EntryKind = "file" | "dir" | "other";

/** Read-only view of a fetched tree. Paths may be absolute (inside `root`) or relative to it. */
export class SourceTree {
  constructor(readonly root: string) {}

  private rel(p: string): string {
    const rel = path.isAbsolute(p) ? path.relative(this.root, p) : p;
    if (rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel))
      throw new UnsafeTreeError(`'${p}' is not inside the repository`);
    return rel.split(path.sep).join("/");
  }

  /** The real absolute path of `p` (links resolved inside the root), or undefined if missing. */
  async resolve(p: string): Promise<string | undefined> {
    const rel = this.rel(p);
    const parts = await resolveInside(this.root, rel, { label: rel || "." });
    return parts === undefined ? undefined : path.join(this.root, ...parts);
  }

  async stat(p: string): Promise<Stats | undefined> {
    const real = await this.resolve(p);
    if (real === undefined) return undefined;
    try {
      return await lstat(real);
    } catch {
      return undefined;
    }
  }

  async kind(p: string): Promise<EntryKind | undefined> {
    const st = await this.stat(p);
    if (!st) return undefined;
    return st.isFile() ? "file" : st.isDirectory() ? "dir" : "other";
  }

  /** Names in a folder, sorted (fixed order, independent of the filesystem); [] if not a folder. */
  async list(p: string): Promise<string[]> {
    const real = await this.resolve(p);
    if (real === undefined) return [];
    try {
      return (await readdir(real)).sort();
    } catch {
      return [];
    }
  }

  /** The first `maxBytes` of a regular file as UTF-8, or undefined when it is not one. */
  async readText(p: string, maxBytes = 1024 * 1024): Promise<string | undefined> {
    const buf = await this.readBytes(p, maxBytes);
    return buf?.toString("utf8");
  }

  async readBytes(p: string, maxBytes: number): Promise<Buffer | undefined> {
    const real = await this.resolve(p);
    if (real === undefined) return undefined;
    let fh;
    try {
      // O_NOFOLLOW: a link put in place after resolve() is refused (ELOOP) instead of followed.
      fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EISDIR") return undefined;
      if (code === "ELOOP")
        throw new UnsafeTreeError(`'${this.rel(p)}' became a symbolic link while being read`);
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return undefined;
      const size = Math.min(st.size, maxBytes);
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(buf, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return buf.subarray(0, off);
    } finally {
      await fh.close();
    }
  }
}
