// Runs an external tool from an argv array (never a shell string), streaming its output lines
// and keeping the last ones for error messages; bounded by a timeout.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { ToolError } from "../kernel/errors.js";

export interface ToolResult {
  code: number;
  /** The last 200 non-empty lines of stdout and stderr, interleaved. */
  output: string[];
  timedOut: boolean;
}

export function runTool(
  argv: string[],
  opts: {
    timeoutMs: number;
    onLine?: (line: string) => void;
    /** The child's whole environment (default: inherited). */
    env?: Record<string, string>;
    signal?: AbortSignal;
  },
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: opts.env,
      signal: opts.signal,
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
    }, opts.timeoutMs);
    const output = collectOutput(child, opts.onLine);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(
        new ToolError(`cannot run ${cmd}: ${err.message}`, `install ${cmd} on this host`, {
          cause: err,
        }),
      );
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output, timedOut });
    });
  });
}

/**
 * Streams a child's stdout and stderr line by line to `onLine` and keeps the last 200 non-empty
 * lines (interleaved) in the returned array, which fills as the child runs.
 */
export function collectOutput(
  child: Pick<ChildProcessWithoutNullStreams, "stdout" | "stderr">,
  onLine?: (line: string) => void,
): string[] {
  const output: string[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split(/\r?\n/)) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 200) output.shift();
      onLine?.(line);
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  return output;
}
