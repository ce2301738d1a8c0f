// Typed errors. Every error a user can cause carries an actionable message; the CLI maps
// UsageError/ConfigError to exit 2 and everything else to exit 1.
export class IacError extends Error {
  override name = "IacError";
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
}

/** Nothing by that name: a project with no deployed services, an unknown service. */
export class NotFoundError extends IacError {
  override name = "NotFoundError";
}

/** A required tool or service is missing or unreachable (docker, terraform, provider). */
export class ToolError extends IacError {
  override name = "ToolError";
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
