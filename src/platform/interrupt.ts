// SIGINT/SIGTERM during an operation: the first signal asks every stage to stop (terraform is
// sent SIGINT and waited for, so it saves its state); a second one escalates (terraform gets
// SIGKILL). The operation then fails with InterruptedError, which the CLI maps to exit 130.
import { type ErrorCode, IacError } from "../kernel/errors.js";

export class InterruptedError extends IacError {
  override name = "InterruptedError";
  override readonly code: ErrorCode = "interrupted";
  constructor(
    readonly during: string,
    readonly signal: string,
    detail = "",
  ) {
    super(
      `interrupted (${signal}) during ${during}${detail ? `: ${detail}` : ""}`,
      "run the same command again: it picks up from the saved state (resources an interrupted " +
        "apply left outside the state are reconciled first)",
    );
  }
}

export interface Interrupts {
  /** Aborted on the first signal; its reason is the signal's name. */
  signal: AbortSignal;
  /** Aborted on the second signal: stop children the hard way. */
  hard: AbortSignal;
  dispose(): void;
}

/** Installs SIGINT/SIGTERM handlers until dispose(); `onSignal` tells the user what happens. */
export function installInterrupts(onSignal: (message: string) => void): Interrupts {
  const soft = new AbortController();
  const hard = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (!soft.signal.aborted) {
      onSignal(`received ${sig}: stopping (send it again to stop at once)`);
      soft.abort(sig);
    } else if (!hard.signal.aborted) {
      onSignal(`received ${sig} again: stopping at once`);
      hard.abort(sig);
    }
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: soft.signal,
    hard: hard.signal,
    dispose: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}

/** The signal's name when `signal` was aborted by installInterrupts, else "abort". */
export function abortReason(signal: AbortSignal | undefined): string {
  const r: unknown = signal?.reason;
  return typeof r === "string" ? r : "abort";
}

/** Throws InterruptedError when the operation was interrupted. */
export function throwIfInterrupted(signal: AbortSignal | undefined, during: string): void {
  if (signal?.aborted) throw new InterruptedError(during, abortReason(signal));
}
