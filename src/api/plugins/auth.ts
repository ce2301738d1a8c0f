// Authentication for every route not marked `public`: the Unix socket is trusted by its file
// mode (unless IAC_SOCKET_REQUIRE_AUTH), TCP needs a Supabase bearer (see ../auth.ts).
import { DENIAL_TEXT, type Principal } from "../auth.js";
import type { ApiApp, ApiContext } from "../context.js";
import { errorReply } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** No authentication required (health, OpenAPI document). */
    public?: boolean;
  }
}

export function registerAuth(app: ApiApp, ctx: ApiContext): void {
  const { auth, config } = ctx;
  app.addHook("onRequest", async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    if (ctx.viaSocket(req.raw) && !config.socketRequireAuth) {
      req.principal = { kind: "socket" };
      return;
    }
    const outcome = await auth.authenticate(req.headers.authorization, req.ip);
    if (outcome.ok) {
      req.principal = outcome.principal;
      return;
    }
    req.log.info(
      { status: outcome.status, error: outcome.error, reason: outcome.reason },
      "request not authorized",
    );
    // Fixed texts only: nothing from the token (or a library's message about it) reaches a header.
    if (outcome.status === 401) {
      reply.header(
        "www-authenticate",
        `Bearer realm="iac", error="invalid_token", error_description="${DENIAL_TEXT.invalid_token}"`,
      );
    } else if (outcome.status === 403) {
      reply.header("www-authenticate", `Bearer realm="iac", error="insufficient_scope"`);
    } else {
      reply.header("retry-after", outcome.status === 429 ? "10" : "5");
    }
    return errorReply(reply, outcome.status, outcome.error, outcome.message);
  });
}
