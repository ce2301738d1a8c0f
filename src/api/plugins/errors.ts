// The API's one error mapper: typed errors thrown by routes become JSON
// `{error, message, hint?, ...}` with the right status; nothing else shapes error replies.
import type { FastifyReply } from "fastify";
import type { ApiApp } from "../context.js";
import { errorMessage, IacError, NotFoundError, UsageError } from "../../kernel/errors.js";
import { ProjectBusyError } from "../deployments.js";
import { MAX_BODY_BYTES, RequestValidationError } from "../schemas.js";

/** An error with its HTTP status and code decided where it is thrown. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function errorReply(
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

export function registerErrorHandlers(app: ApiApp): void {
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
}
