// The admin API's Unix socket: trusted by its file permissions (like the Docker socket), so
// it is created 0600 (owner only) with no window where it is wider; a stale socket left by a
// crashed server is replaced; a live one, or any non-socket file at the path, is refused.
import { chmodSync, lstatSync, statSync, unlinkSync } from "node:fs";
import type { Server } from "node:http";
import { connect } from "node:net";
import path from "node:path";
import { IacError } from "../kernel/errors.js";

export class SocketPathError extends IacError {
  override name = "SocketPathError";
}

function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(socketPath);
    const done = (alive: boolean) => {
      c.destroy();
      resolve(alive);
    };
    c.once("connect", () => done(true));
    c.once("error", () => done(false));
    c.setTimeout(1_000, () => done(false));
  });
}

/**
 * The socket's folder must not be writable by other users: one who can write there can
 * replace the socket (or plant one before we start) and receive every request, tokens included.
 */
function checkParent(socketPath: string): void {
  const dir = path.dirname(socketPath);
  let st;
  try {
    st = statSync(dir);
  } catch {
    return; // reported below as "folder does not exist"
  }
  const uid = process.getuid?.();
  const wide = st.mode & 0o022;
  const foreign = uid !== undefined && st.uid !== uid && st.uid !== 0;
  if (wide || foreign)
    throw new SocketPathError(
      `refusing the socket ${socketPath}: its folder ${dir} is ${
        wide
          ? `writable by other users (mode ${(st.mode & 0o7777).toString(8)})`
          : `owned by uid ${st.uid}`
      }, so another user could replace the socket`,
      "put the socket in a folder only you (or root) can write, e.g. $XDG_RUNTIME_DIR/iac_wrapper.sock",
    );
}

/** Makes `socketPath` free to bind: removes a stale socket, refuses anything else. */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  checkParent(socketPath);
  let st;
  try {
    st = lstatSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      try {
        if (!statSync(path.dirname(socketPath)).isDirectory()) throw new Error("not a directory");
      } catch {
        throw new SocketPathError(
          `cannot create the socket ${socketPath}: folder ${path.dirname(socketPath)} does not exist`,
          "create it, or set IAC_SOCKET_PATH to a path in a folder you own (e.g. $XDG_RUNTIME_DIR/iac_wrapper.sock)",
        );
      }
      return;
    }
    throw err;
  }
  if (!st.isSocket()) {
    throw new SocketPathError(
      `refusing to replace ${socketPath}: it exists and is not a socket`,
      "remove it yourself if it is garbage, or set IAC_SOCKET_PATH to another path",
    );
  }
  if (await probe(socketPath)) {
    throw new SocketPathError(
      `another server is listening on ${socketPath}`,
      "stop the other `iac serve`, or set IAC_SOCKET_PATH to another path",
    );
  }
  unlinkSync(socketPath); // stale: nobody answers
}

/**
 * Listens on `socketPath` with mode 0600 from the moment the socket exists (umask during
 * bind; Node binds synchronously inside listen()). Returns a cleanup that removes the socket
 * file if it is still the one we created.
 */
export async function listenUnix(server: Server, socketPath: string): Promise<() => void> {
  await prepareSocketPath(socketPath);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new SocketPathError(`cannot listen on ${socketPath}: ${err.message}`));
    server.once("error", onError);
    const old = process.umask(0o177);
    try {
      server.listen(socketPath, () => {
        server.off("error", onError);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
  chmodSync(socketPath, 0o600);
  const ino = lstatSync(socketPath).ino;
  return () => {
    try {
      const st = lstatSync(socketPath);
      if (st.isSocket() && st.ino === ino) unlinkSync(socketPath);
    } catch {
      // already gone
    }
  };
}
