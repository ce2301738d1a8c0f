// Typed errors, one catalogue. Every error class extends IacError and has a `code`; the
// catalogue maps the code to the CLI exit code, the HTTP status (+ the API's `error` string)
// and the gRPC status. Every error a user can cause carries an actionable `hint`;
// formatError is the one place message and hint are put together.

/** gRPC status codes used by the catalogue (numbers from grpc/status.h; no grpc import here). */
export const GrpcStatus = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface CatalogueEntry {
  /** CLI exit code: 2 usage/config error, 1 anything that failed. */
  exitCode: number;
  httpStatus: number;
  /** The API's machine-readable `error` string. */
  httpError: string;
  grpcStatus: number;
}

export const ERROR_CATALOGUE = {
  /** Bad input from the user: flags, repos file, slugs, request bodies. */
  usage: {
    exitCode: 2,
    httpStatus: 400,
    httpError: "invalid_request",
    grpcStatus: GrpcStatus.INVALID_ARGUMENT,
  },
  /** Invalid settings (environment, flags). */
  config: {
    exitCode: 2,
    httpStatus: 500,
    httpError: "config_error",
    grpcStatus: GrpcStatus.FAILED_PRECONDITION,
  },
  /** Nothing by that name: a project with no deployed services, an unknown service (exit 2:
   * like a usage error, the user named something that is not there). */
  not_found: {
    exitCode: 2,
    httpStatus: 404,
    httpError: "not_found",
    grpcStatus: GrpcStatus.NOT_FOUND,
  },
  /** Another operation holds the project (lock, running deploy). */
  busy: {
    exitCode: 1,
    httpStatus: 409,
    httpError: "project_busy",
    grpcStatus: GrpcStatus.ABORTED,
  },
  /** A dependency is unreachable right now (Supabase Auth); retry later. */
  unavailable: {
    exitCode: 1,
    httpStatus: 503,
    httpError: "unavailable",
    grpcStatus: GrpcStatus.UNAVAILABLE,
  },
  /** Stopped by SIGINT/SIGTERM (or a cancelled request); the next run converges. */
  interrupted: {
    exitCode: 130,
    httpStatus: 503,
    httpError: "interrupted",
    grpcStatus: GrpcStatus.CANCELLED,
  },
  /** A stage of the pipeline failed (fetch, detect, build, terraform, a required tool). */
  failed: {
    exitCode: 1,
    httpStatus: 500,
    httpError: "pipeline_error",
    grpcStatus: GrpcStatus.INTERNAL,
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class IacError extends Error {
  override name = "IacError";
  readonly code: ErrorCode = "failed";
  constructor(
    message: string,
    /** What to do about it, shown under the message. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad input from the user: flags, repos file, slugs. CLI exit code 2. */
export class UsageError extends IacError {
  override name = "UsageError";
  override readonly code: ErrorCode = "usage";
  /** The failing part of the input, as a path (`slugs.1`, `services.0.name`), when known. */
  readonly field?: string;
  constructor(message: string, hint?: string, options?: { cause?: unknown; field?: string }) {
    super(message, hint, options);
    this.field = options?.field;
  }
}

/** Nothing by that name: a project with no deployed services, an unknown service. */
export class NotFoundError extends IacError {
  override name = "NotFoundError";
  override readonly code: ErrorCode = "not_found";
}

/** A required tool or service is missing or unreachable (docker, terraform, provider). */
export class ToolError extends IacError {
  override name = "ToolError";
}

/** The catalogue entry for any thrown value (non-IacErrors count as `failed`). */
export function catalogueEntry(err: unknown): CatalogueEntry {
  return ERROR_CATALOGUE[err instanceof IacError ? err.code : "failed"];
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Message and hint together, the one way: `message\n<indent>hint: ...` (block), or
 * `message (hint: ...)` on one line (table cells, gRPC status details).
 */
export function formatError(
  err: unknown,
  opts: { oneLine?: boolean; indent?: string } = {},
): string {
  const msg = errorMessage(err);
  const hint = err instanceof IacError ? err.hint : undefined;
  if (!hint) return msg;
  return opts.oneLine ? `${msg} (hint: ${hint})` : `${msg}\n${opts.indent ?? ""}hint: ${hint}`;
}
