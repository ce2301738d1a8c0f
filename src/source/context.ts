// What every fetch step shares: the typed FetchError (with a machine-readable reason), the
// per-fetch context (slug, config, log, abort signal, size limits) and small helpers.
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import type { EventSink } from "../kernel/events.js";
import type { Slug } from "../kernel/types.js";

export type FetchFailure =
  | "not-found"
  | "ref-not-found"
  | "auth"
  | "rate-limited"
  | "timeout"
  | "network"
  | "server-error"
  | "unsafe-archive"
  | "too-large"
  | "subdir-not-found"
  | "git-failed"
  | "forbidden-host"
  | "aborted";

export class FetchError extends IacError {
  override name = "FetchError";
  constructor(
    readonly reason: FetchFailure,
    message: string,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

export interface FetchOptions {
  config: Config;
  service?: string;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface Limits {
  maxBytes: number;
  maxFiles: number;
}

/** One fetch in progress; steps that only handle one kind of slug take `Ctx<GitHubSlug>` etc. */
export interface Ctx<S extends Slug = Slug> {
  slug: S;
  config: Config;
  log: (line: string) => void;
  signal?: AbortSignal;
  limits: Limits;
  /** `-c http.curloptResolve=...`: the address checked by the host policy, pinned for git. */
  pin: string[];
}

export const sourcesDir = (config: Config) => path.join(config.cacheDir, "sources");
export const tmpName = (prefix: string) =>
  `.tmp-${prefix}-${process.pid}-${randomBytes(4).toString("hex")}`;

export function timeoutSignal(ctx: Ctx): AbortSignal {
  const t = AbortSignal.timeout(ctx.config.fetch.timeoutMs);
  return ctx.signal ? AbortSignal.any([ctx.signal, t]) : t;
}

export function isTimeout(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === "TimeoutError" || (err.cause as Error | undefined)?.name === "TimeoutError")
  );
}
