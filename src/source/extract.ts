// Safe tar extraction: no absolute paths, no '..', no links leaving the tree, no device
// files, capped size and file count. A violation is a FetchError (unsafe-archive / too-large).
import { chmod, lstat, mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { Unpack, type ReadEntry } from "tar";
import { IacError } from "../kernel/errors.js";
import { explainSystemError } from "../platform/syserror.js";
import { FetchError, type Limits, isTimeout } from "./context.js";
import { resolveInside, UnsafeTreeError } from "../detect/tree.js";

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
 * The OS fault behind a tar warning (a full disk, a read-only or forbidden folder), explained
 * with the extraction folder as its place when the error names none; undefined for others.
 */
function systemFault(message: unknown, data: unknown, parent: string): IacError | undefined {
  for (const cand of [data, message]) {
    const e = cand as { code?: unknown; syscall?: unknown; path?: unknown } | undefined;
    if (!e || typeof e !== "object" || typeof e.code !== "string") continue;
    if (!/^(ENOSPC|EDQUOT|EROFS|EACCES|EPERM)$/.test(e.code)) continue;
    const withPlace = Object.assign(new Error(String((e as Error).message ?? e.code)), {
      code: e.code,
      syscall: typeof e.syscall === "string" ? e.syscall : "write",
      path: typeof e.path === "string" ? e.path : parent,
    });
    return explainSystemError(withPlace);
  }
  return undefined;
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
  let problem: IacError | undefined;
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
  const fail = (e: IacError) => {
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
    onwarn: (code: string, message: string | Error, data?: unknown) => {
      if (code === "TAR_ENTRY_INFO") return;
      // A full disk, a read-only or forbidden folder: the machine's fault, not the archive's.
      const sys = systemFault(message, data, parent);
      if (sys) {
        problem ??= sys;
        cap.destroy(sys);
        return;
      }
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
    const sys = systemFault(err, undefined, parent);
    if (sys) throw sys;
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
 * Walks an extracted tree: only files, folders and symlinks that resolve (virtually, see
 * detect/tree.ts) to existing entries inside the tree;
 * normalises modes to 0644/0755 (exec bit kept). Defence in depth behind the entry filter.
 */
export async function verifyTree(root: string, limits: Limits, label: string): Promise<void> {
  let count = 0;
  const unsafe = (what: string) =>
    new FetchError(
      "unsafe-archive",
      `${label}: refusing the tree: ${what}`,
      "links must point to existing files inside the repository",
    );
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      if (++count > limits.maxFiles)
        throw new FetchError("too-large", `${label}: more than ${limits.maxFiles} entries`);
      const st = await lstat(full);
      if (st.isSymbolicLink()) {
        // Resolved component by component inside the root, links followed virtually: the
        // verdict does not depend on where the tree sits on disk (it is verified in a temp
        // folder and renamed into the cache), and a dangling link is refused, not guessed at.
        const relPosix = rel.split(path.sep).join("/");
        let parts: string[] | undefined;
        try {
          parts = await resolveInside(root, relPosix);
        } catch (err) {
          if (err instanceof UnsafeTreeError) throw unsafe(err.message);
          throw err;
        }
        if (parts === undefined)
          throw unsafe(`symbolic link '${relPosix}' is dangling (its target does not exist)`);
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
