// POST /deploy (202 + status URL, or an SSE stream with Accept: text/event-stream) and
// POST /destroy. Both start an operation in the registry (one per project at a time).
import { principalName } from "../auth.js";
import { parseServiceList } from "../../intake/repofile.js";
import { UsageError } from "../../kernel/errors.js";
import type { ServiceSpec } from "../../kernel/types.js";
import type { ApiApp, ApiContext } from "../context.js";
import type { Operation } from "../deployments.js";
import type { DeployReport } from "../pipeline.js";
import { HttpError } from "../plugins/errors.js";
import {
  deployBodySchema,
  destroyBodySchema,
  parseRequest,
  RequestValidationError,
} from "../schemas.js";
import { wantsEventStream } from "../sse.js";
import { links, streamOperation } from "./deployments.js";

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
      const field = err.field ?? key;
      throw new RequestValidationError("body", [{ field, message: err.message }], err.hint);
    }
    throw err;
  }
}

/** Validates a deploy body and starts it (shared by POST /deploy and gRPC Deploy). */
export function beginDeploy(
  ctx: ApiContext,
  input: unknown,
  allowFile: boolean,
  principal?: string,
): Operation {
  const { config, pipeline } = ctx;
  const body = parseRequest(deployBodySchema, input, "body");
  const project = body.project ?? config.project;
  const services = toSpecs(body, allowFile);
  return ctx.registry.start<DeployReport>({
    kind: "deploy",
    project,
    services: services.map((s) => ({ name: s.name, slug: s.slug.raw })),
    run: (onEvent, signal) =>
      pipeline.deploy(config, { project, services, principal }, onEvent, signal),
    classify: (r) => (r.services.every((s) => s.status === "SERVING") ? "succeeded" : "failed"),
  });
}

export function deployRoutes(app: ApiApp, ctx: ApiContext): void {
  const { config, pipeline } = ctx;
  app.post("/deploy", async (req, reply) => {
    const op = beginDeploy(ctx, req.body, ctx.viaSocket(req.raw), principalName(req.principal));
    const { project, services } = op;
    req.log.info(
      { deployment: op.id, project, services: services.length, principal: req.principal?.kind },
      "deploy started",
    );
    if (wantsEventStream(req.headers.accept)) return streamOperation(ctx, reply, op, 0, true);
    return reply
      .code(202)
      .header("location", links(op).status_url)
      .send({ id: op.id, project, status: op.status, ...links(op) });
  });

  app.post("/destroy", async (req, reply) => {
    const body = parseRequest(destroyBodySchema, req.body ?? {}, "body");
    const project = body.project ?? config.project;
    const op = ctx.registry.start({
      kind: "destroy",
      project,
      run: (onEvent) => pipeline.destroy(config, project, onEvent),
    });
    req.log.info({ deployment: op.id, project, principal: req.principal?.kind }, "destroy started");
    if (wantsEventStream(req.headers.accept)) return streamOperation(ctx, reply, op, 0, true);
    await op.done;
    if (op.status === "succeeded")
      return reply.send({ id: op.id, project, ...(op.result as object) });
    throw new HttpError(500, "destroy_failed", op.error?.message ?? "destroy failed", {
      id: op.id,
      hint: op.error?.hint,
    });
  });
}
