// The interface between the admin API and the deploy pipeline (src/operations/deploy.ts). The server
// is handed an object with these shapes; `iac serve` loads the real one (`realPipeline`)
// lazily so the API still starts, and says so, while the pipeline cannot be loaded.
import type { Config } from "../kernel/config.js";
// The report shapes are the pipeline's own (type-only: nothing of deploy.ts loads here).
import type { DeployReport } from "../operations/deploy.js";
import type { ServiceHealth } from "../operations/status.js";
import { IacError } from "../kernel/errors.js";
import type { EventSink } from "../kernel/events.js";
import type { ServiceSpec } from "../kernel/types.js";

export type { DeployReport, ServiceReport } from "../operations/deploy.js";
export type { ServiceHealth } from "../operations/status.js";

export interface LogLineOut {
  ts: string;
  msg: string;
  stream: string;
}

export interface ControlPlaneHealth {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

export interface Pipeline {
  deploy(
    config: Config,
    req: { project: string; services: ServiceSpec[] },
    onEvent: EventSink,
    signal?: AbortSignal,
  ): Promise<DeployReport>;
  destroy(config: Config, project: string, onEvent: EventSink): Promise<{ removed: string[] }>;
  health(config: Config, project: string): Promise<ServiceHealth[]>;
  streamLogs(
    config: Config,
    project: string,
    service: string,
    opts: { tail: number; follow: boolean },
    onLine: (l: LogLineOut) => void,
    signal: AbortSignal,
  ): Promise<void>;
  controlPlaneHealth(config: Config): Promise<ControlPlaneHealth>;
}

/** The pipeline could not be loaded: routes that need it answer 501. */
export class PipelineUnavailableError extends IacError {
  override name = "PipelineUnavailableError";
}

const METHODS = ["deploy", "destroy", "health", "streamLogs", "controlPlaneHealth"] as const;

const unavailable = new WeakMap<object, PipelineUnavailableError>();

/** A Pipeline whose every method fails with PipelineUnavailableError(reason). */
export function unavailablePipeline(reason: string): Pipeline {
  const error = new PipelineUnavailableError(
    `the deploy pipeline is not available in this build: ${reason}`,
    "this iac serve can authenticate and serve /health and /openapi.json only; " +
      "update to a build whose src/operations/deploy.ts exports `realPipeline`",
  );
  const fail = async (): Promise<never> => {
    throw error;
  };
  unavailable.set(fail, error);
  return { deploy: fail, destroy: fail, health: fail, streamLogs: fail, controlPlaneHealth: fail };
}

/** Throws (synchronously) when `method` is a stand-in from unavailablePipeline. */
export function assertAvailable(pipeline: Pipeline, method: keyof Pipeline): void {
  const error = unavailable.get(pipeline[method]);
  if (error) throw error;
}

/**
 * Wraps an object that may implement only part of the interface: missing methods fail
 * with PipelineUnavailableError instead of a TypeError.
 */
export function completePipeline(candidate: Partial<Pipeline>, origin: string): Pipeline {
  const fallback = unavailablePipeline(`${origin} does not implement it`);
  const out = { ...fallback } as Pipeline;
  for (const m of METHODS) {
    const fn = candidate[m];
    if (typeof fn === "function")
      (out as unknown as Record<string, unknown>)[m] = fn.bind(candidate);
  }
  return out;
}

export interface LoadedPipeline {
  pipeline: Pipeline;
  available: boolean;
  /** Why it is not available (import error or missing export). */
  reason?: string;
  missing: string[];
}

/**
 * Loads `realPipeline` from src/operations/deploy.ts. The specifier is a variable on purpose: the API
 * compiles and runs whether or not that module (and everything it imports) exists yet.
 */
export async function loadRealPipeline(
  specifier = "../operations/deploy.js",
): Promise<LoadedPipeline> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    const reason = `cannot load src/operations/deploy.ts (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`;
    return {
      pipeline: unavailablePipeline(reason),
      available: false,
      reason,
      missing: [...METHODS],
    };
  }
  const real = mod.realPipeline as Partial<Pipeline> | undefined;
  if (!real || typeof real !== "object") {
    const reason = "src/operations/deploy.ts does not export `realPipeline`";
    return {
      pipeline: unavailablePipeline(reason),
      available: false,
      reason,
      missing: [...METHODS],
    };
  }
  const missing = METHODS.filter((m) => typeof real[m] !== "function");
  return {
    pipeline: completePipeline(real, "src/operations/deploy.ts realPipeline"),
    available: missing.length === 0,
    reason: missing.length ? `realPipeline lacks ${missing.join(", ")}` : undefined,
    missing,
  };
}
