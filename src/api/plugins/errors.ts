// The API's one error mapper: typed errors thrown by routes become JSON
// `{error, message, hint?, field?, ...}` with the status from the error catalogue
// (kernel/errors.ts); nothing else shapes error replies.
import type { FastifyReply } from "fastify";
import { allowedMethods } from "../contract.js";
import type { ApiApp } from "../context.js";
import type { Config } from "../../kernel/config.js";
import {
  catalogueEntry,
  errorMessage,
  IacError,
  ToolError,
  UsageError,
} from "../../kernel/errors.js";
import { explainWithConfig } from "../../platform/syserror.js";
import { ProjectBusyError, TooManyOperationsError } from "../deployments.js";
import { MAX_BODY_BYTES, RequestValidationError, UnprocessableRequestError } from "../schemas.js";

/** An error whose HTTP status and `error` string are decided where it is thrown. */
export class HttpError extends IacError {
  override name = "HttpError";
  constructor(
    readonly status: number,
    readonly httpCode: string,
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

export function registerErrorHandlers(app: ApiApp, config?: Config): void {
  // Before auth and body parsing: a declared path asked with another method is 405 whatever
  // else is wrong with the request (QUERY without a Content-Type, no token).
  app.addHook("onRequest", async (req, reply) => {
    if (!req.is404) return;
    const urlPath = req.url.split("?")[0] ?? "/";
    const allow = allowedMethods(urlPath);
    if (allow) {
      return errorReply(
        reply.header("allow", allow.join(", ")),
        405,
        "method_not_allowed",
        `${req.method} is not allowed on ${urlPath}`,
        { hint: `use ${allow.join(" or ")}` },
      );
    }
  });
  app.setNotFoundHandler((req, reply) =>
    errorReply(reply, 404, "not_found", `no route ${req.method} ${req.url.split("?")[0]}`),
  );
  app.setErrorHandler((caught: unknown, req, reply) => {
    // The machine's faults as what they are: Docker down is 503 (retry later), a read-only or
    // full disk names the folder; never a bare `connect ENOENT /var/run/docker.sock`.
    const err = config ? explainWithConfig(caught, config) : caught;
    if (
      err instanceof ToolError &&
      err !== caught &&
      /Docker engine not reachable/.test(err.message)
    )
      return errorReply(reply.header("retry-after", "5"), 503, "docker_unavailable", err.message, {
        hint: err.hint,
      });
    if (err instanceof HttpError)
      return errorReply(reply, err.status, err.httpCode, err.message, err.extra);
    if (err instanceof TooManyOperationsError)
      return errorReply(reply, 429, "too_many_operations", err.message, { hint: err.hint });
    if (err instanceof IacError) {
      const entry = catalogueEntry(err);
      const extra: Record<string, unknown> = {};
      if (err instanceof UsageError && err.field !== undefined) extra.field = err.field;
      if (err instanceof RequestValidationError) extra.issues = err.issues;
      if (err instanceof ProjectBusyError) {
        extra.id = err.running.id;
        extra.kind = err.running.kind;
        extra.status_url = `/deployments/${err.running.id}`;
      }
      if (err.hint !== undefined) extra.hint = err.hint;
      if (err instanceof UnprocessableRequestError)
        return errorReply(reply, 422, "unprocessable", err.message, extra);
      return errorReply(reply, entry.httpStatus, entry.httpError, err.message, extra);
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
