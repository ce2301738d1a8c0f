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
  UnprocessableRequestError,
} from "../schemas.js";
import { wantsEventStream } from "../sse.js";
import { links, streamOperation } from "./deployments.js";

function toSpecs(
  body: ReturnType<typeof deployBodySchema.parse>,
  allowFile: boolean,
): ServiceSpec[] {
  const key = body.slugs ? "slugs" : "services";
  const slugs = body.slugs ?? body.services?.map((s) => s.slug) ?? [];
  const local = slugs.findIndex((s) => s.startsWith("file:"));
  if (!allowFile && local >= 0) {
    // A remote caller may not make this host read its folders: allowed only over the socket.
    throw new HttpError(
      403,
      "forbidden",
      `file: slugs name folders of this host; they are accepted over the Unix socket only (${JSON.stringify(slugs[local])})`,
      {
        field: body.slugs ? `slugs.${local}` : `services.${local}.slug`,
        hint: "send it over the Unix socket (IAC_SOCKET_PATH), or use a gh: or git+https:// slug",
      },
    );
  }
  const doc = body.slugs ? { slugs: body.slugs } : { services: body.services };
  try {
    return parseServiceList(doc, "POST /deploy", process.cwd(), { allowFile });
  } catch (err) {
    // The body matched the schema, so what is left is a rule JSON Schema cannot state: two
    // services with one name, env names that differ only in case. 422, naming the field.
    if (err instanceof UsageError) {
      throw new UnprocessableRequestError(err.message, err.hint, err.field ?? key);
    }
    throw err;
  }
}

/**
 * The deploy body, or a 400 naming the field. When the repos-file parser can say more about
 * what is wrong (which part of a slug, a reserved env name, a hint), its words are used.
 */
function parseDeployBody(input: unknown): ReturnType<typeof deployBodySchema.parse> {
  try {
    return parseRequest(deployBodySchema, input, "body");
  } catch (err) {
    if (!(err instanceof RequestValidationError)) throw err;
    const b = (input ?? {}) as { slugs?: unknown; services?: unknown };
    if (typeof input === "object" && (b.slugs === undefined) !== (b.services === undefined)) {
      try {
        const doc = b.slugs !== undefined ? { slugs: b.slugs } : { services: b.services };
        parseServiceList(doc, "POST /deploy", process.cwd(), { allowFile: true });
      } catch (parsed) {
        if (parsed instanceof UsageError) {
          // The more precise of the two (zod names the env key, the parser only `env`).
          const zodField = err.issues[0]?.field ?? "";
          const field =
            parsed.field === undefined || zodField.startsWith(parsed.field)
              ? zodField
              : parsed.field;
          throw new RequestValidationError(
            "body",
            [{ field, message: parsed.message }, ...err.issues.filter((i) => i.field !== field)],
            parsed.hint,
          );
        }
      }
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
  const body = parseDeployBody(input);
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
    const body = parseRequest(destroyBodySchema, req.body === undefined ? {} : req.body, "body");
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
