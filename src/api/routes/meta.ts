// Public routes: GET /health (the control plane's own checks) and GET /openapi.json.
import type { ApiApp, ApiContext } from "../context.js";
import { openApiDocument } from "../openapi.js";

export function metaRoutes(app: ApiApp, ctx: ApiContext): void {
  app.get("/health", { config: { public: true } }, async (_req, reply) => {
    const h = await ctx.controlPlaneHealth();
    return reply.code(h.ok ? 200 : 503).send({ ...h, auth: { configured: ctx.auth.configured } });
  });

  app.get("/openapi.json", { config: { public: true } }, async () => openApiDocument());
}
