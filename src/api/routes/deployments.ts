// GET /deployments[/:id], POST /deployments/:id/cancel, GET /deployments/:id/logs (SSE replay
// from Last-Event-ID, then follow), and the stream every operation's events go through.
import type { FastifyReply } from "fastify";
import type { Principal } from "../auth.js";
import type { ApiApp, ApiContext } from "../context.js";
import type { Operation, StoredEvent } from "../deployments.js";
import { HttpError } from "../plugins/errors.js";
import { deploymentParamsSchema, parseRequest } from "../schemas.js";

export const links = (op: Operation) => ({
  status_url: `/deployments/${op.id}`,
  logs_url: `/deployments/${op.id}/logs`,
});

/** Who a stream counts against (the per-principal cap). */
function principalKey(p: Principal | undefined): string {
  return !p ? "anonymous" : p.kind === "user" ? `user:${p.id}` : p.kind;
}

/**
 * Admits one more event stream for the request's principal, or throws 429 (before the reply
 * is hijacked): streams are capped in all and per caller, so clients that never read cannot
 * pile up buffers. Returns the key the stream counts against.
 */
export function admitStream(ctx: ApiContext, principal: Principal | undefined): string {
  const key = principalKey(principal);
  if (!ctx.hub.admits(key))
    throw new HttpError(
      429,
      "too_many_streams",
      `too many open event streams (at most ${ctx.hub.limits.maxPerPrincipal} per caller, ${ctx.hub.limits.maxStreams} in all)`,
      { hint: "close streams you no longer read" },
    );
  return key;
}

/** Replays an operation's events after `afterSeq`, then follows it until it finishes. */
export function streamOperation(
  ctx: ApiContext,
  reply: FastifyReply,
  op: Operation,
  afterSeq: number,
  hello: boolean,
): void {
  const key = admitStream(ctx, reply.request.principal);
  reply.hijack();
  const stream = ctx.hub.open(
    reply.raw,
    { "x-deployment-id": op.id, location: links(op).status_url },
    undefined,
    key,
  );
  if (hello)
    stream.send("deployment", { id: op.id, kind: op.kind, project: op.project, ...links(op) });
  const send = (e: StoredEvent) => stream.send(e.event.type, e.event, e.seq);
  for (const e of op.since(afterSeq)) send(e);
  const unsubscribe = op.subscribe(send, () => stream.end());
  stream.onClose(unsubscribe);
}

export function deploymentRoutes(app: ApiApp, ctx: ApiContext): void {
  const { registry } = ctx;
  app.get("/deployments", async () =>
    registry.list().map((op) => ({ ...op.toJSON(), ...links(op) })),
  );

  const findOp = (params: unknown): Operation => {
    const { id } = parseRequest(deploymentParamsSchema, params, "params");
    const op = registry.get(id);
    if (!op) throw new HttpError(404, "not_found", `no deployment ${id}`);
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
    return streamOperation(ctx, reply, op, Number.isInteger(last) && last > 0 ? last : 0, false);
  });
}
