// GET /services (each service's health) and GET /services/:name/logs (SSE of its log lines).
import { NotFoundError, errorMessage } from "../../kernel/errors.js";
import type { ApiApp, ApiContext } from "../context.js";
import {
  logsQuerySchema,
  parseRequest,
  projectQuerySchema,
  serviceParamsSchema,
} from "../schemas.js";
import type { SseStream } from "../sse.js";
import { admitStream } from "./deployments.js";

export function serviceRoutes(app: ApiApp, ctx: ApiContext): void {
  const { config, pipeline } = ctx;
  app.get("/services", async (req) => {
    const { project = config.project } = parseRequest(projectQuerySchema, req.query, "query");
    try {
      return { project, services: await pipeline.health(config, project) };
    } catch (err) {
      // Nothing deployed is an empty collection, not a missing resource.
      if (err instanceof NotFoundError) return { project, services: [] };
      throw err;
    }
  });

  app.get("/services/:name/logs", async (req, reply) => {
    const { name } = parseRequest(serviceParamsSchema, req.params, "params");
    const q = parseRequest(logsQuerySchema, req.query, "query");
    const project = q.project ?? config.project;
    const key = admitStream(ctx, req.principal);
    const controller = new AbortController();
    reply.raw.on("close", () => controller.abort());
    let stream: SseStream | undefined;
    const ensure = (): SseStream => {
      if (!stream) {
        reply.hijack();
        stream = ctx.hub.open(reply.raw, {}, undefined, key);
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
}
