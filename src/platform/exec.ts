// The one place iac starts external tools (git, terraform, pip, docker, the image recipe): always
// from an argv array (never a shell string), with a timeout, cancellation that reaches the tool's
// own helpers, line-wise output and the last lines kept for error messages.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Duplex, PassThrough, type Readable } from "node:stream";
import { ToolError } from "../kernel/errors.js";

export interface ProcessOptions {
  cwd?: string;
  /** The child's whole environment (default: inherited). */
  env?: Record<string, string>;
  /** Kill the process group with SIGKILL after this long (result: timedOut). */
  timeoutMs?: number;
  /** Aborting sends `abortWith` to the process group (result: aborted). */
  signal?: AbortSignal;
  /** What an abort sends (default SIGKILL; terraform gets SIGINT so it can save its state). */
  abortWith?: NodeJS.Signals;
  /** Aborting this one always sends SIGKILL (a second Ctrl-C). */
  hardSignal?: AbortSignal;
  /** Called once per signal sent on abort, e.g. to tell the user what iac is waiting for. */
  onAbortSent?: (signal: NodeJS.Signals, pid: number | undefined) => void;
  /**
   * What happens to stdout: "lines" (default) goes to onLine and the tail like stderr,
   * "capture" is returned whole in `stdout`, a function gets it as a stream (piped synchronously:
   * Node discards unconsumed stdio when a child exits, so a late consumer could lose it all).
   */
  stdout?: "lines" | "capture" | ((stream: Readable) => void);
  onLine?: (line: string) => void;
  /**
   * Rewrites each output line before it reaches onLine and the tail (e.g. a JSON message to its
   * human text); undefined drops the line.
   */
  mapLine?: (line: string) => string | undefined;
  /** How many non-empty output lines to keep (default 200). */
  tailLines?: number;
}

export interface ProcessResult {
  /** Exit code; null when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout when `stdout: "capture"`, else empty. */
  stdout: Buffer;
  /** The last non-empty output lines (stderr, and stdout in "lines" mode), interleaved. */
  output: string[];
  timedOut: boolean;
  aborted: boolean;
}

/**
 * Runs `argv` in its own process group, so a timeout or cancel also ends the helpers the tool
 * starts (git-remote-http, terraform's providers), which would otherwise keep the pipes open.
 * Rejects only when the process cannot be started (the raw spawn error, e.g. ENOENT).
 */
export function runProcess(argv: string[], opts: ProcessOptions = {}): Promise<ProcessResult> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const tailLines = opts.tailLines ?? 200;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      return resolve({
        code: null,
        signal: null,
        stdout: Buffer.alloc(0),
        output: [],
        timedOut: false,
        aborted: true,
      });
    }
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const send = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    let timedOut = false;
    let aborted = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            send("SIGKILL");
          }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      const sig = opts.abortWith ?? "SIGKILL";
      opts.onAbortSent?.(sig, child.pid);
      send(sig);
    };
    const onHard = () => {
      aborted = true;
      opts.onAbortSent?.("SIGKILL", child.pid);
      send("SIGKILL");
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    opts.hardSignal?.addEventListener("abort", onHard, { once: true });
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      opts.hardSignal?.removeEventListener("abort", onHard);
    };

    const output: string[] = [];
    const onLine = (raw: string) => {
      const line = opts.mapLine ? opts.mapLine(raw) : raw;
      if (line === undefined || !line.trim()) return;
      output.push(line);
      if (output.length > tailLines) output.shift();
      opts.onLine?.(line);
    };
    const stdoutChunks: Buffer[] = [];
    const mode = opts.stdout ?? "lines";
    if (mode === "capture") child.stdout.on("data", (d: Buffer) => stdoutChunks.push(d));
    else if (mode === "lines") createInterface({ input: child.stdout }).on("line", onLine);
    else {
      const pass = new PassThrough({ highWaterMark: 1024 * 1024 });
      child.stdout.pipe(pass);
      mode(pass);
    }
    createInterface({ input: child.stderr }).on("line", onLine);

    child.on("error", (err) => {
      cleanup();
      reject(err);
    });
    // A tool killed by a signal (by us or anyone) cannot stop its helpers (terraform's provider
    // plugins): they would live on as orphans. The group is ours alone, so it goes too.
    child.on("exit", (_code, signal) => {
      if (signal === null || child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // nothing left in the group
      }
    });
    child.on("close", (code, signal) => {
      cleanup();
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdoutChunks),
        output,
        timedOut,
        aborted: aborted || (opts.signal?.aborted ?? false),
      });
    });
  });
}

export interface ToolResult {
  code: number;
  /** The last 200 non-empty lines of stdout and stderr, interleaved. */
  output: string[];
  timedOut: boolean;
}

/**
 * runProcess for a tool iac needs on the host: a tool that cannot be started is a ToolError
 * naming it (with `installHint`), a signal death counts as exit 1.
 */
export async function runTool(
  argv: string[],
  opts: ProcessOptions & { timeoutMs: number; installHint?: string },
): Promise<ToolResult> {
  const cmd = argv[0]!;
  try {
    const res = await runProcess(argv, opts);
    return { code: res.code ?? 1, output: res.output, timedOut: res.timedOut };
  } catch (err) {
    throw new ToolError(
      `cannot run ${cmd}: ${(err as Error).message}`,
      opts.installHint ?? `install ${cmd} on this host`,
      { cause: err },
    );
  }
}

/**
 * Starts `argv` as a byte tunnel: writes go to its stdin, reads come from its stdout (an ssh
 * `docker system dial-stdio` connection). Destroying the stream ends the process; the process
 * ending (or failing to start) ends the stream, with its last stderr line as the error.
 */
export function openStdioTunnel(argv: string[]): Duplex {
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  // stdout's end is held back until the exit code is known: a failed ssh (unknown host key,
  // refused login) must surface as its own message, not as a bare "socket hang up".
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  // Writes go through a stream of our own: ssh closing its stdin first must not end the tunnel
  // with a bare "Premature close" before the exit code (and its reason) is known.
  const input = new PassThrough();
  input.pipe(child.stdin);
  const stream = Duplex.from({ readable: out, writable: input });
  let lastErr = "";
  createInterface({ input: child.stderr }).on("line", (line) => {
    if (line.trim()) lastErr = line.trim();
  });
  child.stdin.on("error", () => undefined); // the exit code below tells what happened
  child.on("error", (err) => out.destroy(new Error(`cannot run ${cmd}: ${err.message}`)));
  child.on("close", (code, signal) => {
    if (code === 0 || stream.destroyed) out.end();
    else
      out.destroy(
        new Error(`${argv.join(" ")} failed (${code ?? signal})${lastErr ? `: ${lastErr}` : ""}`),
      );
  });
  stream.on("close", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  });
  return stream;
}
