// The admin API's app factory: one fastify app served on TCP (IAC_HTTP_ADDR) and on a Unix
// socket (IAC_SOCKET_PATH). Both listeners share the routes (routes/), the deployment registry
// and the auth cache; requests that arrive over the socket are marked so auth can trust them.
// Errors are mapped in plugins/errors.ts, authentication in plugins/auth.ts.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import type { Config } from "../kernel/config.js";
import { errorMessage, IacError } from "../kernel/errors.js";
import { Authenticator, type AuthenticatorOptions } from "./auth.js";
import { type ApiContext, cachedHealth } from "./context.js";
import { DeploymentRegistry } from "./deployments.js";
import { startGrpc } from "./grpc.js";
import type { Pipeline } from "./pipeline.js";
import { registerAuth } from "./plugins/auth.js";
import { registerErrorHandlers } from "./plugins/errors.js";
import { beginDeploy, deployRoutes } from "./routes/deploy.js";
import { releaseRoutes } from "./routes/releases.js";
import { deploymentRoutes } from "./routes/deployments.js";
import { metaRoutes } from "./routes/meta.js";
import { serviceRoutes } from "./routes/services.js";
import { MAX_BODY_BYTES } from "./schemas.js";
import { listenUnix } from "./socket.js";
import { SseHub, type SseLimits } from "./sse.js";

export interface CreateServerOptions {
  config: Config;
  pipeline: Pipeline;
  logger?: Logger;
  /** Test and bench knobs for the authenticator (cache TTL, JWKS cooldown, timeouts). */
  auth?: Partial<AuthenticatorOptions>;
  /** How long /health results are reused (ms); docker/terraform probes are not free. */
  healthCacheMs?: number;
  /** Caps on event streams and concurrent operations (defaults in sse.ts / deployments.ts). */
  limits?: Partial<SseLimits> & { maxOperations?: number };
  /** Shutdown: how long running deploys may finish before they are aborted (ms). */
  shutdownGraceMs?: number;
}

export interface ListenOptions {
  /** TCP address; false = no TCP listener. Default: config.httpAddr. */
  http?: { host: string; port: number } | false;
  /** Unix socket path; false = none. Default: config.socketPath. */
  socketPath?: string | false;
  /** Unix socket for the gRPC ControlPlane service; default none (`iac serve` puts it next to the HTTP one). */
  grpcSocketPath?: string | false;
}

export interface ApiServer {
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;
  auth: Authenticator;
  deployments: DeploymentRegistry;
  listen(
    opts?: ListenOptions,
  ): Promise<{ httpUrl?: string; socketPath?: string; grpcSocketPath?: string }>;
  close(): Promise<void>;
}

export async function createServer(opts: CreateServerOptions): Promise<ApiServer> {
  const { config, pipeline } = opts;
  const logger =
    opts.logger ??
    pino({
      level: config.logLevel === "silent" ? "silent" : config.logLevel,
      redact: ["req.headers.authorization"],
    });
  const auth = new Authenticator({
    supabaseUrl: config.supabase.url,
    serviceRoleKey: config.supabase.serviceRoleKey,
    adminRoles: config.supabase.adminRoles,
    ...opts.auth,
  });
  const registry = new DeploymentRegistry({
    maxActive: opts.limits?.maxOperations,
    dir: path.join(config.stateDir, ".api", "deployments"),
  });
  const hub = new SseHub(opts.limits);
  const viaSocket = new WeakSet<IncomingMessage>();
  let handler!: (req: IncomingMessage, res: ServerResponse) => void;

  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: MAX_BODY_BYTES,
    forceCloseConnections: true,
    return503OnClosing: true,
    serverFactory: (h) => {
      handler = h;
      return createHttpServer(h);
    },
  });
  const unixServer: Server = createHttpServer((req, res) => {
    viaSocket.add(req);
    handler(req, res);
  });

  const ctx: ApiContext = {
    config,
    pipeline,
    auth,
    registry,
    hub,
    viaSocket: (req) => viaSocket.has(req),
    controlPlaneHealth: cachedHealth(config, pipeline, opts.healthCacheMs ?? 2_000),
  };
  registerErrorHandlers(app, config);
  registerAuth(app, ctx);
  metaRoutes(app, ctx);
  deployRoutes(app, ctx);
  deploymentRoutes(app, ctx);
  serviceRoutes(app, ctx);
  releaseRoutes(app, ctx);

  // ---- lifecycle ------------------------------------------------------------------------
  let removeSocket: (() => void) | undefined;
  let stopGrpc: (() => Promise<void>) | undefined;
  let listening = false;
  let tcpListening = false;

  return {
    app,
    auth,
    deployments: registry,
    async listen(lo: ListenOptions = {}) {
      const out: { httpUrl?: string; socketPath?: string; grpcSocketPath?: string } = {};
      const httpAddr = lo.http === undefined ? config.httpAddr : lo.http;
      const socketPath = lo.socketPath === undefined ? config.socketPath : lo.socketPath;
      await app.ready();
      if (socketPath) {
        removeSocket = await listenUnix(unixServer, socketPath);
        out.socketPath = socketPath;
      }
      if (lo.grpcSocketPath) {
        try {
          stopGrpc = await startGrpc(lo.grpcSocketPath, {
            authenticate: config.socketRequireAuth ? (h) => auth.authenticate(h) : undefined,
            beginDeploy: (body) => beginDeploy(ctx, body, true, "socket"),
            controlPlaneHealth: ctx.controlPlaneHealth,
          });
        } catch (err) {
          if (removeSocket) await new Promise<void>((r) => unixServer.close(() => r()));
          removeSocket?.();
          throw err;
        }
        out.grpcSocketPath = lo.grpcSocketPath;
      }
      if (httpAddr) {
        try {
          await app.listen({
            host: httpAddr.host,
            port: httpAddr.port,
            listenTextResolver: (address) => `admin API listening on ${address}`,
          });
        } catch (err) {
          if (removeSocket) await new Promise<void>((r) => unixServer.close(() => r()));
          removeSocket?.();
          throw new IacError(
            `cannot listen on ${httpAddr.host}:${httpAddr.port}: ${errorMessage(err)}`,
            "set IAC_HTTP_ADDR (or --http-addr) to a free address; port 0 picks one",
          );
        }
        tcpListening = true;
        const a = app.server.address() as AddressInfo;
        const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
        out.httpUrl = `http://${host}:${a.port}`;
      }
      listening = true;
      return out;
    },
    async close() {
      // Stop accepting on the socket, let running operations finish (or abort them after the
      // grace period, so their streams still get the terminal event), end streams, close.
      const unixClosed =
        listening && removeSocket
          ? new Promise<void>((r) => unixServer.close(() => r()))
          : Promise.resolve();
      await registry.shutdown(opts.shutdownGraceMs ?? 10_000);
      hub.endAll();
      await stopGrpc?.();
      stopGrpc = undefined;
      unixServer.closeAllConnections();
      await unixClosed;
      removeSocket?.();
      removeSocket = undefined;
      if (tcpListening || !listening) await app.close();
      listening = false;
    },
  };
}
