// What the routes, plugins and the gRPC service share: built once by createServer.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Config } from "../kernel/config.js";
import { errorMessage } from "../kernel/errors.js";
import type { Authenticator } from "./auth.js";
import type { DeploymentRegistry } from "./deployments.js";
import type { ControlPlaneHealth, Pipeline } from "./pipeline.js";
import type { SseHub } from "./sse.js";

/** The fastify app as createServer builds it (pino logger, node:http server). */
export type ApiApp = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export interface ApiContext {
  config: Config;
  pipeline: Pipeline;
  auth: Authenticator;
  registry: DeploymentRegistry;
  hub: SseHub;
  /** True for requests that arrived over the Unix socket. */
  viaSocket(req: IncomingMessage): boolean;
  /** The pipeline's controlPlaneHealth, reused for a while (docker/terraform probes are not free). */
  controlPlaneHealth(): Promise<ControlPlaneHealth>;
}

export function cachedHealth(
  config: Config,
  pipeline: Pipeline,
  cacheMs: number,
): () => Promise<ControlPlaneHealth> {
  let cache: { at: number; value: Promise<ControlPlaneHealth> } | undefined;
  return () => {
    const now = Date.now();
    if (!cache || now - cache.at > cacheMs) {
      const value = pipeline.controlPlaneHealth(config).catch((err): ControlPlaneHealth => ({
        ok: false,
        checks: { pipeline: { ok: false, detail: errorMessage(err) } },
      }));
      cache = { at: now, value };
    }
    return cache.value;
  };
}
