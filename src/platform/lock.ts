// A per-project lock so two deploys (or a deploy and a destroy) of one project cannot
// interleave. An exclusive-create file holding the owner's pid; a lock whose pid is gone
// is stale and taken over.
import { open, readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { type ErrorCode, IacError } from "../kernel/errors.js";

export class LockedError extends IacError {
  override name = "LockedError";
  override readonly code: ErrorCode = "busy";
}

interface LockInfo {
  pid: number;
  host: string;
  operation: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function acquireLock(file: string, operation: string): Promise<() => Promise<void>> {
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    operation,
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, "wx", 0o644);
      await handle.writeFile(JSON.stringify(info));
      await handle.close();
      return async () => {
        await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let holder: LockInfo | undefined;
      try {
        holder = JSON.parse(await readFile(file, "utf8")) as LockInfo;
      } catch {
        holder = undefined;
      }
      if (holder && holder.host === info.host && !alive(holder.pid)) {
        await rm(file, { force: true }); // stale: its owner died
        continue;
      }
      throw new LockedError(
        `another ${holder?.operation ?? "operation"} holds the project lock ${file}` +
          (holder ? ` (pid ${holder.pid} on ${holder.host} since ${holder.since})` : ""),
        "wait for it to finish; if no iac process is running, delete the lock file",
      );
    }
  }
  throw new LockedError(`could not take the project lock ${file}`);
}
