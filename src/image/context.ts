// The build context as a tar stream: the repo (minus .dockerignore'd files), the runner and the
// Dockerfile. Fixed mtimes, owners and sorted entries: identical content gives an identical context.
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { type Header, pack as tarPack } from "tar-stream";
import { type IgnoreRules, isIgnored } from "./dockerignore.js";

/** Fixed mtime for every tar entry: identical content gives an identical context. */
const TAR_MTIME = new Date("2000-01-01T00:00:00Z");

export interface TarEntry {
  name: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  /** File content, or `file` to read it from when the tar is streamed (one file in memory at a time). */
  data?: Buffer;
  file?: string;
  linkname?: string;
}

/** Walks `dir` into tar entries under `prefix`, skipping .git and ignored paths. */
export async function collectDir(
  dir: string,
  prefix: string,
  rules: IgnoreRules,
  out: TarEntry[],
  rel = "",
): Promise<void> {
  const names = (await readdir(path.join(dir, rel))).sort();
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    if (name === ".git" || name === "__pycache__") continue;
    if (isIgnored(rules, r)) {
      // A re-include (`!`) may still match something below an ignored directory.
      if (!rules.hasExceptions) continue;
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

export function fileEntry(name: string, data: string | Buffer): TarEntry {
  return {
    name,
    type: "file",
    mode: 0o644,
    data: Buffer.isBuffer(data) ? data : Buffer.from(data),
  };
}

function headerFor(entry: TarEntry, size: number): Header {
  const type = entry.type === "dir" ? "directory" : entry.type;
  return {
    name: entry.name,
    type,
    mode: entry.mode,
    size: type === "file" ? size : 0,
    linkname: entry.linkname ?? "",
    mtime: TAR_MTIME,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
    devmajor: 0,
    devminor: 0,
  };
}

/**
 * Streams `entries` as a tar (tar-stream writes the ustar/pax headers). Each entry is handed over
 * only after the previous one was consumed, so at most one file is held in memory.
 */
export function tarStream(entries: TarEntry[]): Readable {
  const pack = tarPack();
  void (async () => {
    for (const entry of entries) {
      const data =
        entry.type === "file" ? (entry.data ?? (await readFile(entry.file!))) : undefined;
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error | null) => (err ? reject(err) : resolve());
        const header = headerFor(entry, data?.length ?? 0);
        if (data) pack.entry(header, data, done);
        else pack.entry(header, done);
      });
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return Readable.from(pack, { objectMode: false });
}
