// GET /releases (a project's recorded releases), POST /rollback (streamed like /deploy) and
// GET /status (every project on this engine). Empty collections are 200 with [].
import { principalName } from "../auth.js";
import type { ApiApp, ApiContext } from "../context.js";
import type { DeployReport } from "../pipeline.js";
import { parseRequest, projectQuerySchema, rollbackBodySchema } from "../schemas.js";
import { wantsEventStream } from "../sse.js";
import { links, streamOperation } from "./deployments.js";

export function releaseRoutes(app: ApiApp, ctx: ApiContext): void {
  const { config, pipeline } = ctx;

  app.get("/releases", async (req) => {
    const { project = config.project } = parseRequest(projectQuerySchema, req.query, "query");
    return { project, releases: await pipeline.history(config, project) };
  });

  app.get("/status", async () => ({ projects: await pipeline.overview(config) }));

  app.post("/rollback", async (req, reply) => {
    const body = parseRequest(rollbackBodySchema, req.body === undefined ? {} : req.body, "body");
    const project = body.project ?? config.project;
    const principal = principalName(req.principal);
    const op = ctx.registry.start<DeployReport>({
      kind: "rollback",
      project,
      run: (onEvent, signal) =>
        pipeline.rollback(config, { project, to: body.to, principal }, onEvent, signal),
      classify: (r) => (r.services.every((s) => s.status === "SERVING") ? "succeeded" : "failed"),
    });
    req.log.info({ deployment: op.id, project, to: body.to, principal }, "rollback started");
    if (wantsEventStream(req.headers.accept)) return streamOperation(ctx, reply, op, 0, true);
    return reply
      .code(202)
      .header("location", links(op).status_url)
      .send({ id: op.id, project, status: op.status, ...links(op) });
  });
}
