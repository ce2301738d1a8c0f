// Hand-made (possibly hostile) tar archives for extraction tests: raw ustar headers, so the
// archive can hold anything a malicious server might send (`..`, absolute paths, links out,
// device files) — tar libraries refuse to create those.
import { gzipSync } from "node:zlib";

export interface TarEntry {
  path: string;
  /** "0" file, "2" symlink, "1" hard link, "3" char device, "4" block device, "5" dir, "6" FIFO */
  type?: "0" | "1" | "2" | "3" | "4" | "5" | "6";
  content?: string | Buffer;
  linkpath?: string;
  mode?: number;
  /** Declared size (defaults to the content length); lets a test claim huge sizes. */
  size?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const type = e.type ?? "0";
  h.write(e.path, 0, 100, "utf8");
  h.write(octal(e.mode ?? (type === "5" ? 0o755 : 0o644), 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(1700000000, 12), 136);
  h.write("        ", 148);
  h.write(type, 156);
  if (e.linkpath) h.write(e.linkpath, 157, 100, "utf8");
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148);
  return h;
}

export function buildTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.content ?? "");
    const declared = e.size ?? body.length;
    parts.push(header(e, declared));
    if (e.type === undefined || e.type === "0") {
      const data = Buffer.alloc(Math.ceil(declared / 512) * 512);
      body.copy(data);
      parts.push(data);
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function buildTarGz(entries: TarEntry[]): Buffer {
  return gzipSync(buildTar(entries));
}
