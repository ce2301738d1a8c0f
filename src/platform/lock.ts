// A per-project lock so two operations on one project (deploy, plan, destroy) never interleave.
//
// The lock is a folder of numbered generations: `<lock>/g000000000042`. The highest generation
// says who holds the lock, or that it was released. Taking the lock means creating the NEXT
// generation with link(2), which fails when the name exists: a compare-and-swap on the
// successor of the state we read. So
//   - a generation appears atomically with its content (written to a temp file first);
//   - of several processes that saw the same free or stale generation, exactly one wins;
//   - a stale holder (its pid is gone) is replaced without ever removing its file first,
//     so there is no window in which two processes both "take over".
// Old generations are deleted only below a newer one, so the highest is never missing.
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { type ErrorCode, IacError } from "../kernel/errors.js";

export class LockedError extends IacError {
  override name = "LockedError";
  override readonly code: ErrorCode = "busy";
}

interface LockInfo {
  state: "held" | "released";
  pid: number;
  host: string;
  operation: string;
  since: string;
}

const GEN_RE = /^g(\d{12})$/;
const genName = (gen: number) => `g${String(gen).padStart(12, "0")}`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function generations(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir(dir)) {
    const m = GEN_RE.exec(name);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** The highest generation and what it says; undefined content = none yet. */
async function current(dir: string): Promise<{ gen: number; info?: LockInfo }> {
  for (;;) {
    const gens = await generations(dir);
    const gen = gens.at(-1) ?? 0;
    if (gen === 0) return { gen };
    try {
      return { gen, info: JSON.parse(await readFile(path.join(dir, genName(gen)), "utf8")) };
    } catch (err) {
      // Deleted meanwhile: only happens once a newer generation exists, so look again.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
  }
}

/** Creates generation `gen` with `info` as content, or returns false when it exists. */
async function claim(dir: string, gen: number, info: LockInfo): Promise<boolean> {
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, JSON.stringify(info), { mode: 0o644 });
  try {
    await link(tmp, path.join(dir, genName(gen)));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function prune(dir: string, below: number): Promise<void> {
  for (const gen of await generations(dir)) {
    if (gen < below) await rm(path.join(dir, genName(gen)), { force: true });
  }
}

function describeHolder(info: LockInfo): string {
  return `pid ${info.pid} on ${info.host} since ${info.since}`;
}

/** A lock file written by an older iac (a plain file): removed when its owner is gone. */
async function migrateLegacy(file: string): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  if (!st || st.isDirectory()) return;
  let holder: Partial<LockInfo> | undefined;
  try {
    holder = JSON.parse(await readFile(file, "utf8")) as LockInfo;
  } catch {
    holder = undefined;
  }
  if (holder?.pid && holder.host === hostname() && alive(holder.pid)) {
    throw new LockedError(
      `another ${holder.operation ?? "operation"} holds the project lock ${file} (pid ${holder.pid})`,
      "wait for it to finish",
    );
  }
  await rm(file, { force: true });
}

/**
 * Takes the lock or throws LockedError naming the holder. The returned function releases it.
 * A holder whose pid no longer exists on this host is stale and taken over.
 */
export async function acquireLock(file: string, operation: string): Promise<() => Promise<void>> {
  await migrateLegacy(file);
  await mkdir(file, { recursive: true, mode: 0o755 });
  const me: LockInfo = {
    state: "held",
    pid: process.pid,
    host: hostname(),
    operation,
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    const { gen, info } = await current(file);
    if (info?.state === "held") {
      const stale = info.host === me.host && !alive(info.pid);
      if (!stale) {
        throw new LockedError(
          `another ${info.operation} holds the project lock ${file} (${describeHolder(info)})`,
          info.host === me.host
            ? "wait for it to finish (a lock whose process has died is taken over automatically)"
            : `it was taken on another host; if no iac runs there, remove ${file}`,
        );
      }
    }
    if (!(await claim(file, gen + 1, me))) continue; // someone else moved first: look again
    // A process acting on an old view may have claimed a number below a newer generation;
    // the highest one wins, so make sure it is ours.
    const gens = await generations(file);
    if (gens.at(-1) !== gen + 1) {
      await rm(path.join(file, genName(gen + 1)), { force: true });
      continue;
    }
    const mine = gen + 1;
    await prune(file, mine);
    return async () => {
      await claim(file, mine + 1, { ...me, state: "released", since: new Date().toISOString() });
      await prune(file, mine + 1);
    };
  }
  throw new LockedError(`could not take the project lock ${file} (too much contention)`);
}
