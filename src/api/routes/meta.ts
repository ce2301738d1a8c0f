// Public routes: GET /health (the control plane's own checks) and GET /openapi.json.
import type { ApiApp, ApiContext } from "../context.js";
import { openApiDocument } from "../openapi.js";

export function metaRoutes(app: ApiApp, ctx: ApiContext): void {
  // Public: up or down and which check failed. Details (tool versions, error texts) only for
  // callers who are admins anyway (the trusted socket, or a bearer that authenticates).
  app.get("/health", { config: { public: true } }, async (req, reply) => {
    const h = await ctx.controlPlaneHealth();
    const admin =
      (ctx.viaSocket(req.raw) && !ctx.config.socketRequireAuth) ||
      (req.headers.authorization !== undefined &&
        (await ctx.auth.authenticate(req.headers.authorization, req.ip)).ok);
    const checks = admin
      ? h.checks
      : Object.fromEntries(Object.entries(h.checks).map(([k, v]) => [k, { ok: v.ok }]));
    return reply
      .code(h.ok ? 200 : 503)
      .send({ ok: h.ok, checks, auth: { configured: ctx.auth.configured } });
  });

  app.get("/openapi.json", { config: { public: true } }, async () => openApiDocument());
}
