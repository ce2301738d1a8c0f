// Operating-system faults reported as what they are: a read-only file system, a full disk, a
// permission problem, an unreachable Docker engine — naming the path (or address) and the fix,
// instead of a bare `connect ENOENT /var/run/docker.sock` or a message blaming the repository.
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

/** An IacError saying what happened and what to do, or undefined when `err` is no OS fault. */
export function explainSystemError(err: unknown, dockerHost?: string): IacError | undefined {
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
  switch (s.code) {
    case "EROFS":
      return new IacError(
        `cannot write ${where}: read-only file system`,
        "point the setting that names this folder (IAC_STATE_DIR, IAC_CACHE_DIR, IAC_SECRETS_DIR) " +
          "at a writable place, or remount it read-write",
        { cause: err },
      );
    case "ENOSPC":
      return new IacError(
        `no space left on the device holding ${where}`,
        "free disk space (e.g. `docker image prune` of your own images, old caches under IAC_CACHE_DIR) and retry",
        { cause: err },
      );
    case "EDQUOT":
      return new IacError(`disk quota exceeded writing ${where}`, "free space and retry", {
        cause: err,
      });
    case "EACCES":
    case "EPERM":
      return new IacError(
        `permission denied: ${s.syscall ?? "access"} ${where}`,
        `check the owner and mode of ${where} (\`ls -ld ${where}\`), or run as its owner`,
        { cause: err },
      );
    default:
      return undefined;
  }
}
