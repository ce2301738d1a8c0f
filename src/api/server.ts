// The admin API: one fastify app served on TCP (IAC_HTTP_ADDR) and on a Unix socket
// (IAC_SOCKET_PATH). Both listeners share the routes, the deployment registry and the auth
// cache; requests that arrive over the socket are marked so auth can trust them.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { pino, type Logger } from "pino";
import type { Config } from "../kernel/config.js";
import { errorMessage, IacError, NotFoundError, UsageError } from "../kernel/errors.js";
import { parseServiceList } from "../intake/repofile.js";
import type { ServiceSpec } from "../kernel/types.js";
import { Authenticator, type AuthenticatorOptions, type Principal } from "./auth.js";
import {
  DeploymentRegistry,
  type Operation,
  ProjectBusyError,
  type StoredEvent,
} from "./deployments.js";
import { openApiDocument } from "./openapi.js";
import { type ControlPlaneHealth, type DeployReport, type Pipeline } from "./pipeline.js";
import {
  deployBodySchema,
  deploymentParamsSchema,
  destroyBodySchema,
  logsQuerySchema,
  MAX_BODY_BYTES,
  parseRequest,
  projectQuerySchema,
  RequestValidationError,
  serviceParamsSchema,
} from "./schemas.js";
import { startGrpc } from "./grpc.js";
import { listenUnix } from "./socket.js";
import { SseHub, type SseStream, wantsEventStream } from "./sse.js";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** No authentication required (health, OpenAPI document). */
    public?: boolean;
  }
}

export interface CreateServerOptions {
  config: Config;
  pipeline: Pipeline;
  logger?: Logger;
  /** Test and bench knobs for the authenticator (cache TTL, JWKS cooldown, timeouts). */
  auth?: Partial<AuthenticatorOptions>;
  /** How long /health results are reused (ms); docker/terraform probes are not free. */
  healthCacheMs?: number;
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

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function errorReply(
  reply: FastifyReply,
  status: number,
  error: string,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return reply
    .code(status)
    .type("application/json")
    .send({ error, message, ...extra });
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
  const registry = new DeploymentRegistry();
  const hub = new SseHub();
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

  // ---- errors ---------------------------------------------------------------------------
  app.setNotFoundHandler((req, reply) =>
    errorReply(reply, 404, "not_found", `no route ${req.method} ${req.url.split("?")[0]}`),
  );
  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof HttpError)
      return errorReply(reply, err.status, err.code, err.message, err.extra);
    if (err instanceof RequestValidationError) {
      return errorReply(reply, 400, "invalid_request", err.message, {
        field: err.issues[0]?.field,
        issues: err.issues,
        hint: err.hint,
      });
    }
    if (err instanceof ProjectBusyError) {
      return errorReply(reply, 409, "project_busy", err.message, {
        id: err.running.id,
        kind: err.running.kind,
        status_url: `/deployments/${err.running.id}`,
        hint: err.hint,
      });
    }
    if (err instanceof NotFoundError)
      return errorReply(reply, 404, "not_found", err.message, { hint: err.hint });
    if (err instanceof UsageError)
      return errorReply(reply, 400, "invalid_request", err.message, { hint: err.hint });
    if (err instanceof IacError) {
      return errorReply(reply, 500, "pipeline_error", err.message, { hint: err.hint });
    }
    const fe = err as { statusCode?: number; code?: string; message?: string };
    if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return errorReply(
        reply,
        413,
        "body_too_large",
        `request body larger than ${MAX_BODY_BYTES} bytes`,
      );
    }
    if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return errorReply(reply, 415, "unsupported_media_type", "send the body as application/json");
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return errorReply(reply, fe.statusCode, "invalid_request", fe.message ?? "bad request");
    }
    req.log.error({ err }, "unhandled error");
    return errorReply(reply, 500, "internal_error", errorMessage(err));
  });

  // ---- auth -----------------------------------------------------------------------------
  app.addHook("onRequest", async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    if (viaSocket.has(req.raw) && !config.socketRequireAuth) {
      req.principal = { kind: "socket" };
      return;
    }
    const outcome = await auth.authenticate(req.headers.authorization);
    if (outcome.ok) {
      req.principal = outcome.principal;
      return;
    }
    req.log.info({ status: outcome.status, reason: outcome.error }, "request not authorized");
    if (outcome.status === 401) {
      reply.header(
        "www-authenticate",
        `Bearer realm="iac", error="invalid_token", error_description="${outcome.message.replace(/["\\]/g, "'")}"`,
      );
    } else if (outcome.status === 403) {
      reply.header("www-authenticate", `Bearer realm="iac", error="insufficient_scope"`);
    } else {
      reply.header("retry-after", "5");
    }
    return errorReply(reply, outcome.status, outcome.error, outcome.message);
  });

  // ---- helpers --------------------------------------------------------------------------
  const links = (op: Operation) => ({
    status_url: `/deployments/${op.id}`,
    logs_url: `/deployments/${op.id}/logs`,
  });

  /** Replays an operation's events after `afterSeq`, then follows it until it finishes. */
  function streamOperation(reply: FastifyReply, op: Operation, afterSeq: number, hello: boolean) {
    reply.hijack();
    const stream = hub.open(reply.raw, {
      "x-deployment-id": op.id,
      location: links(op).status_url,
    });
    if (hello)
      stream.send("deployment", { id: op.id, kind: op.kind, project: op.project, ...links(op) });
    const send = (e: StoredEvent) => stream.send(e.event.type, e.event, e.seq);
    for (const e of op.since(afterSeq)) send(e);
    const unsubscribe = op.subscribe(send, () => stream.end());
    stream.onClose(unsubscribe);
  }

  let healthCache: { at: number; value: Promise<ControlPlaneHealth> } | undefined;
  function controlPlaneHealth(): Promise<ControlPlaneHealth> {
    const now = Date.now();
    if (!healthCache || now - healthCache.at > (opts.healthCacheMs ?? 2_000)) {
      const value = pipeline.controlPlaneHealth(config).catch((err): ControlPlaneHealth => ({
        ok: false,
        checks: { pipeline: { ok: false, detail: errorMessage(err) } },
      }));
      healthCache = { at: now, value };
    }
    return healthCache.value;
  }

  function toSpecs(
    body: ReturnType<typeof deployBodySchema.parse>,
    allowFile: boolean,
  ): ServiceSpec[] {
    const key = body.slugs ? "slugs" : "services";
    const doc = body.slugs ? { slugs: body.slugs } : { services: body.services };
    try {
      return parseServiceList(doc, "POST /deploy", process.cwd(), { allowFile });
    } catch (err) {
      if (err instanceof UsageError) {
        // "entry 2 (...)" or "entries 0 (...) and 3 (...)": the later one is the culprit.
        const m = /entr(?:y|ies) (\d+)(?: \([^)]*\) and (\d+))?/.exec(err.message);
        const field = m ? `${key}.${m[2] ?? m[1]}${key === "services" ? ".slug" : ""}` : key;
        throw new RequestValidationError("body", [{ field, message: err.message }], err.hint);
      }
      throw err;
    }
  }

  // ---- routes ---------------------------------------------------------------------------
  app.get("/health", { config: { public: true } }, async (_req, reply) => {
    const h = await controlPlaneHealth();
    return reply.code(h.ok ? 200 : 503).send({ ...h, auth: { configured: auth.configured } });
  });

  app.get("/openapi.json", { config: { public: true } }, async () => openApiDocument());

  /** Validates a deploy body and starts it (shared by POST /deploy and gRPC Deploy). */
  function beginDeploy(input: unknown, allowFile: boolean): Operation {
    const body = parseRequest(deployBodySchema, input, "body");
    const project = body.project ?? config.project;
    const services = toSpecs(body, allowFile);
    return registry.start<DeployReport>({
      kind: "deploy",
      project,
      services: services.map((s) => ({ name: s.name, slug: s.slug.raw })),
      run: (onEvent, signal) => pipeline.deploy(config, { project, services }, onEvent, signal),
      classify: (r) => (r.services.every((s) => s.status === "SERVING") ? "succeeded" : "failed"),
    });
  }

  app.post("/deploy", async (req, reply) => {
    const op = beginDeploy(req.body, viaSocket.has(req.raw));
    const { project, services } = op;
    req.log.info(
      { deployment: op.id, project, services: services.length, principal: req.principal?.kind },
      "deploy started",
    );
    if (wantsEventStream(req.headers.accept)) return streamOperation(reply, op, 0, true);
    return reply
      .code(202)
      .header("location", links(op).status_url)
      .send({ id: op.id, project, status: op.status, ...links(op) });
  });

  app.post("/destroy", async (req, reply) => {
    const body = parseRequest(destroyBodySchema, req.body ?? {}, "body");
    const project = body.project ?? config.project;
    const op = registry.start({
      kind: "destroy",
      project,
      run: (onEvent) => pipeline.destroy(config, project, onEvent),
    });
    req.log.info({ deployment: op.id, project, principal: req.principal?.kind }, "destroy started");
    if (wantsEventStream(req.headers.accept)) return streamOperation(reply, op, 0, true);
    await op.done;
    if (op.status === "succeeded")
      return reply.send({ id: op.id, project, ...(op.result as object) });
    throw new HttpError(500, "destroy_failed", op.error?.message ?? "destroy failed", {
      id: op.id,
      hint: op.error?.hint,
    });
  });

  app.get("/deployments", async () =>
    registry.list().map((op) => ({ ...op.toJSON(), ...links(op) })),
  );

  const findOp = (params: unknown): Operation => {
    const { id } = parseRequest(deploymentParamsSchema, params, "params");
    const op = registry.get(id);
    if (!op)
      throw new HttpError(
        404,
        "not_found",
        `no deployment ${id} (records live in memory and are lost on restart)`,
      );
    return op;
  };

  app.get("/deployments/:id", async (req) => {
    const op = findOp(req.params);
    return { ...op.toJSON(), ...links(op) };
  });

  app.post("/deployments/:id/cancel", async (req, reply) => {
    const op = findOp(req.params);
    if (op.finished) {
      throw new HttpError(
        409,
        "already_finished",
        `deployment ${op.id} already finished (${op.status})`,
        { id: op.id },
      );
    }
    op.controller.abort(new Error(`cancelled through the API by ${req.principal?.kind ?? "?"}`));
    req.log.info({ deployment: op.id, principal: req.principal?.kind }, "deployment cancelled");
    return reply.code(202).send({ id: op.id, status: "cancelling", ...links(op) });
  });

  app.get("/deployments/:id/logs", async (req, reply) => {
    const op = findOp(req.params);
    const last = Number(req.headers["last-event-id"]);
    return streamOperation(reply, op, Number.isInteger(last) && last > 0 ? last : 0, false);
  });

  app.get("/services", async (req) => {
    const { project = config.project } = parseRequest(projectQuerySchema, req.query, "query");
    return { project, services: await pipeline.health(config, project) };
  });

  app.get("/services/:name/logs", async (req, reply) => {
    const { name } = parseRequest(serviceParamsSchema, req.params, "params");
    const q = parseRequest(logsQuerySchema, req.query, "query");
    const project = q.project ?? config.project;
    const controller = new AbortController();
    reply.raw.on("close", () => controller.abort());
    let stream: SseStream | undefined;
    const ensure = (): SseStream => {
      if (!stream) {
        reply.hijack();
        stream = hub.open(reply.raw);
        stream.onClose(() => controller.abort());
      }
      return stream;
    };
    try {
      await pipeline.streamLogs(
        config,
        project,
        name,
        { tail: q.tail, follow: q.follow },
        (line) => ensure().send("log", line),
        controller.signal,
      );
    } catch (err) {
      if (!stream) throw err; // nothing sent yet: a proper HTTP error (404, ...)
      if (!controller.signal.aborted) stream.send("error", { message: errorMessage(err) });
    }
    const s = ensure();
    s.send("end", { service: name, project });
    s.end();
  });

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
            beginDeploy: (body) => beginDeploy(body, true),
            controlPlaneHealth,
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
