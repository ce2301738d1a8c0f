// Operating-system faults reported as what they are: a read-only file system, a full disk, a
// permission problem, an unreachable Docker engine — naming the path (or address) and the fix,
// instead of a bare `connect ENOENT /var/run/docker.sock` or a message blaming the repository.
import { accessSync, constants, existsSync } from "node:fs";
import path from "node:path";
import { type ErrorCode, IacError, ToolError } from "../kernel/errors.js";

/**
 * The Docker engine is not reachable: the environment (DOCKER_HOST, a stopped dockerd) needs
 * fixing before anything can run, so the CLI exits 2 like for any configuration error.
 */
export class DockerUnreachableError extends ToolError {
  override name = "DockerUnreachableError";
  override readonly code: ErrorCode = "config";
}

interface SysError {
  code?: string;
  syscall?: string;
  path?: string;
  address?: string;
  message?: string;
}

function sysError(err: unknown): SysError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const s = e as SysError & { cause?: unknown };
    if (typeof s.code === "string" && (s.syscall || s.path || s.address)) return s;
    e = s.cause;
  }
  return undefined;
}

/** A fault of the machine (disk full, read-only, permission), explained: not worth a retry elsewhere. */
export class SystemFaultError extends IacError {
  override name = "SystemFaultError";
}

/** The first existing folder at or above `p`. */
function existingAncestor(p: string): string {
  let d = path.resolve(p);
  while (!existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

/**
 * Node's recursive mkdir answers ENOENT where the real cause is a read-only file system or a
 * missing write permission on the folder above (it retries the parent, which exists). The
 * folder that exists is asked directly.
 */
function trueCode(s: SysError): string | undefined {
  if (s.code !== "ENOENT" || s.syscall !== "mkdir" || !s.path) return s.code;
  try {
    accessSync(existingAncestor(path.dirname(s.path)), constants.W_OK);
    return s.code;
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code === "EROFS" || code === "EACCES" || code === "EPERM" ? code : s.code;
  }
}

/** Settings that name folders, for the hint: IAC_CACHE_DIR -> its value. */
export type FolderSettings = Record<string, string | undefined>;

/** The setting whose folder holds `p` (the longest match), else all of them. */
function settingFor(p: string, folders: FolderSettings): string {
  let best: [string, number] | undefined;
  for (const [name, dir] of Object.entries(folders)) {
    if (!dir) continue;
    const rel = path.relative(path.resolve(dir), path.resolve(p));
    if (!rel.startsWith("..") && !path.isAbsolute(rel) && (!best || dir.length > best[1]))
      best = [name, dir.length];
  }
  return best ? best[0] : "IAC_STATE_DIR, IAC_CACHE_DIR, IAC_SECRETS_DIR";
}

/** An IacError saying what happened and what to do, or undefined when `err` is no OS fault. */
export function explainSystemError(
  err: unknown,
  dockerHost?: string,
  folders: FolderSettings = {},
): IacError | undefined {
  const s = sysError(err);
  if (!s) return undefined;
  const where = s.path ?? s.address ?? "";
  if (s.syscall === "connect" && /docker\.sock|:2375|:2376/.test(where + (dockerHost ?? ""))) {
    return new DockerUnreachableError(
      `Docker engine not reachable at ${where || dockerHost} (${s.code})`,
      `is Docker running? DOCKER_HOST=${dockerHost ?? "(unset: unix:///var/run/docker.sock)"}; ` +
        "start it (`make bootstrap` starts dockerd) or point DOCKER_HOST at a running engine",
      { cause: err },
    );
  }
  switch (trueCode(s)) {
    case "EROFS":
      return new SystemFaultError(
        `cannot write ${where}: read-only file system`,
        `point ${settingFor(where, folders)} at a writable place, or remount ${existingAncestor(where)} read-write`,
        { cause: err },
      );
    case "ENOSPC":
      return new SystemFaultError(
        `no space left on the device holding ${where}`,
        "free disk space (e.g. `docker image prune` of your own images, old caches under IAC_CACHE_DIR) and retry",
        { cause: err },
      );
    case "EDQUOT":
      return new SystemFaultError(`disk quota exceeded writing ${where}`, "free space and retry", {
        cause: err,
      });
    case "EACCES":
    case "EPERM": {
      const dir = existingAncestor(s.code === "ENOENT" ? path.dirname(where) : where);
      return new SystemFaultError(
        `permission denied: ${s.syscall ?? "access"} ${where}`,
        `check the owner and mode of ${dir} (\`ls -ld ${dir}\`), run as its owner, or point ` +
          `${settingFor(where, folders)} at a folder you may write`,
        { cause: err },
      );
    }
    default:
      return undefined;
  }
}

/** `err` explained with the folders and engine of `config`, or `err` itself when it is no OS fault. */
export function explainWithConfig(
  err: unknown,
  config: { dockerHost?: string; stateDir: string; cacheDir: string; secretsDir: string },
): unknown {
  return (
    explainSystemError(err, config.dockerHost, {
      IAC_STATE_DIR: config.stateDir,
      IAC_CACHE_DIR: config.cacheDir,
      IAC_SECRETS_DIR: config.secretsDir,
    }) ?? err
  );
}
