// The build context as a tar stream: the repo (minus .dockerignore'd files), the runner and the
// Dockerfile. Fixed mtimes and sorted entries: identical content gives an identical context.
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { type IgnoreRule, isIgnored } from "./dockerignore.js";

/** Fixed mtime for every tar entry: identical content gives an identical context. */
const TAR_MTIME = 946684800; // 2000-01-01

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

export function fileEntry(name: string, data: string | Buffer): TarEntry {
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
