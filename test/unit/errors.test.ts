// The error catalogue: every error class maps to one exit code, HTTP status and gRPC status,
// and message + hint are formatted in one place.
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/kernel/config.js";
import {
  ERROR_CATALOGUE,
  GrpcStatus,
  IacError,
  NotFoundError,
  ToolError,
  UsageError,
  catalogueEntry,
  formatError,
} from "../../src/kernel/errors.js";
import { LockedError } from "../../src/platform/lock.js";
import { DockerUnreachableError, explainSystemError } from "../../src/platform/syserror.js";
import { RequestValidationError } from "../../src/api/schemas.js";
import { SupabaseUnavailableError } from "../../src/api/supabase.js";

describe("error catalogue", () => {
  it.each([
    ["UsageError", new UsageError("x"), 2, 400, "invalid_request", GrpcStatus.INVALID_ARGUMENT],
    ["ConfigError", new ConfigError("x"), 2, 500, "config_error", GrpcStatus.FAILED_PRECONDITION],
    ["NotFoundError", new NotFoundError("x"), 2, 404, "not_found", GrpcStatus.NOT_FOUND],
    ["LockedError", new LockedError("x"), 1, 409, "project_busy", GrpcStatus.ABORTED],
    [
      "SupabaseUnavailableError",
      new SupabaseUnavailableError("x"),
      1,
      503,
      "unavailable",
      GrpcStatus.UNAVAILABLE,
    ],
    ["ToolError", new ToolError("x"), 1, 500, "pipeline_error", GrpcStatus.INTERNAL],
    ["IacError", new IacError("x"), 1, 500, "pipeline_error", GrpcStatus.INTERNAL],
    ["a plain Error", new Error("x"), 1, 500, "pipeline_error", GrpcStatus.INTERNAL],
  ])("%s", (_n, err, exitCode, httpStatus, httpError, grpcStatus) => {
    expect(catalogueEntry(err)).toEqual({ exitCode, httpStatus, httpError, grpcStatus });
  });

  it("every entry has a distinct HTTP error string", () => {
    const strings = Object.values(ERROR_CATALOGUE).map((e) => e.httpError);
    expect(new Set(strings).size).toBe(strings.length);
  });

  it("RequestValidationError is a UsageError whose field is its first issue", () => {
    const err = new RequestValidationError("body", [{ field: "slugs.1", message: "bad" }], "h");
    expect(err).toBeInstanceOf(UsageError);
    expect(err.field).toBe("slugs.1");
    expect(err.hint).toBe("h");
    expect(err.message).toBe("invalid body: slugs.1: bad");
  });
});

describe("formatError", () => {
  const err = new UsageError("bad slug 'x'", "use gh:owner/repo");
  it("block form puts the hint on its own line, optionally indented", () => {
    expect(formatError(err)).toBe("bad slug 'x'\nhint: use gh:owner/repo");
    expect(formatError(err, { indent: "  " })).toBe("bad slug 'x'\n  hint: use gh:owner/repo");
  });
  it("one-line form", () => {
    expect(formatError(err, { oneLine: true })).toBe("bad slug 'x' (hint: use gh:owner/repo)");
  });
  it("no hint, or not an IacError: the message only", () => {
    expect(formatError(new IacError("m"))).toBe("m");
    expect(formatError(new Error("m"), { oneLine: true })).toBe("m");
    expect(formatError("s")).toBe("s");
  });
});

describe("Docker unreachable (issue 17: exit 2 with the DOCKER_HOST hint)", () => {
  const refused = Object.assign(new Error("connect ENOENT /var/run/docker.sock"), {
    code: "ENOENT",
    syscall: "connect",
    address: "/var/run/docker.sock",
  });
  it("is named as that, with the DOCKER_HOST in use, and exits 2 like a configuration error", () => {
    const err = explainSystemError(refused, "unix:///var/run/docker.sock");
    expect(err).toBeInstanceOf(DockerUnreachableError);
    expect(err!.message).toBe("Docker engine not reachable at /var/run/docker.sock (ENOENT)");
    expect(err!.hint).toMatch(/^is Docker running\? DOCKER_HOST=unix:\/\/\/var\/run\/docker\.sock/);
    expect(catalogueEntry(err).exitCode).toBe(2);
  });
  it("also when the connect error is the cause of another error", () => {
    const wrapped = new Error("listContainers failed", { cause: refused });
    expect(explainSystemError(wrapped)?.hint).toContain("DOCKER_HOST=(unset");
  });
});
