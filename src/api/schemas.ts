// Request schemas of the admin API (zod). They validate shape and limits; the slugs
// themselves are parsed by the same code as the repos file (400 naming the bad one).
import { z } from "zod";
import { RESERVED_PORTS } from "../kernel/contract.js";
import { UsageError } from "../kernel/errors.js";
import { DNS_LABEL_RE } from "../kernel/names.js";
import { PROCESS_NAME_RE } from "../detect/procfile.js";

export const MAX_SERVICES = 50;
export const MAX_BODY_BYTES = 64 * 1024;

const dnsLabel = z
  .string()
  .regex(DNS_LABEL_RE, "expected a DNS label: lowercase letters, digits and '-', <= 63 chars");

// ---- slugs ------------------------------------------------------------------------------
// The API's slug grammar, as regular expressions the OpenAPI document publishes (ECMA and
// Python `re` read them alike: ASCII classes only, no \d or \s). It is a subset of what
// intake/slug.ts accepts (the repos file may use a few more exotic refs and paths), so a body
// that matches the published schema is never refused by the slug parser afterwards.
const PORT =
  "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const SUBDIR =
  "(?://[A-Za-z0-9_+@][A-Za-z0-9_.+@-]{0,99}(?:/[A-Za-z0-9_+@][A-Za-z0-9_.+@-]{0,99}){0,15})?";
// Ref components: no leading '.', no '..', not ending in '.' or '.lock' (git check-ref-format).
const REF_PART = "[A-Za-z0-9_](?:[A-Za-z0-9_+=,@-]|[.](?=[A-Za-z0-9_+=,@-])){0,99}";
const REF = `(?:#(?![^#]{256})(?!(?:[^#/]*/)*[^#/]*[.]lock(?:/|$))${REF_PART}(?:/${REF_PART}){0,9})?`;
const GH = `gh:[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}`;
const URL_PART = "[A-Za-z0-9_~+][A-Za-z0-9_.~+-]{0,99}";
const GIT =
  `git[+](?:https://${LABEL}(?:[.]${LABEL}){0,10}|http://(?:localhost|127[.]0[.]0[.]1))` +
  `(?::${PORT})?/${URL_PART}(?:/${URL_PART}){0,9}`;
const FILE_PART = "[A-Za-z0-9._~@+,=][A-Za-z0-9._~@+,=-]{0,99}";
const FILE = `file:/?(?!-)${FILE_PART}(?:/${FILE_PART}){0,19}`;
export const SLUG_PATTERN = new RegExp(`^(?:${GH}|${GIT}|${FILE})${SUBDIR}${REF}$`);

const slug = z
  .string()
  .max(512, "at most 512 characters")
  .regex(
    SLUG_PATTERN,
    "expected gh:owner/repo[//subdir][#ref], git+https://host/path.git[//subdir][#ref] or file:path[//subdir][#ref]",
  )
  .describe(
    "gh:owner/repo[//subdir][#ref], git+https://host/path.git[//subdir][#ref] (git+http:// for " +
      "localhost only) or file:path (the Unix socket only; 403 over TCP). A ref is a branch, tag " +
      "or commit SHA.",
  );

// Not IAC_* or OTEL_* (they configure the runner), any case.
const ENV_NAME_RE = /^(?![Ii][Aa][Cc]_|[Oo][Tt][Ee][Ll]_)[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const envName = z
  .string()
  .regex(ENV_NAME_RE, "expected an environment variable name, not IAC_* or OTEL_* (reserved)");
// eslint-disable-next-line no-control-regex
const NO_NUL = /^[^\u0000]*$/;
// eslint-disable-next-line no-control-regex
const ARGV_STRING = /^[^\u0000]*[^\u0000\t\n\v\f\r ][^\u0000]*$/;
const MEMORY_RE =
  /^(?:(?:1[6-9]|[2-9][0-9]|[1-9][0-9]{2,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-6])[mM]|(?:[1-9]|[1-5][0-9]|6[0-4])[gG])$/;

// Label keys the API takes: the repos file's rule (intake/repofile.ts) minus the keys iac sets
// itself; io.iac.entrypoint too (its value is an argv the `entrypoint` field already covers).
const API_LABEL_KEY =
  /^(?!io[.]iac[.]|org[.]opencontainers[.]image[.](?:source|revision)$)[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

export const serviceItemSchema = z
  .object({
    slug,
    name: dnsLabel.optional().describe("service name (default: the repo name)"),
    entrypoint: z
      .union([
        z.string().max(1024).regex(ARGV_STRING, "must contain a word and no NUL"),
        z.array(z.string().min(1).max(1024).regex(NO_NUL, "must not contain NUL")).min(1).max(64),
        z
          .object({
            process: z
              .string()
              .regex(PROCESS_NAME_RE, "a Procfile process type: letters, digits, '_' and '-'"),
          })
          .strict(),
      ])
      .optional()
      .describe(
        "argv override (a string split on whitespace, or a list), or {process: NAME}: a process type of the repository's Procfile",
      ),
    build: z
      .enum(["default", "dockerfile"])
      .optional()
      .describe(
        "default: iac's image recipe; dockerfile: the repository's own Dockerfile with the runner layered on top",
      ),
    telemetry: z
      .enum(["auto", "off"])
      .optional()
      .describe(
        "auto (default): OpenTelemetry auto-instrumentation of main() when it fits the app's pins; off: none",
      ),
    labels: z
      .record(
        z
          .string()
          .regex(
            API_LABEL_KEY,
            "a label name like com.acme.team (io.iac.* and org.opencontainers.image.source/revision are set by iac)",
          ),
        z.string().max(4096).regex(NO_NUL, "must not contain NUL"),
      )
      .refine((l) => Object.keys(l).length <= 64, "at most 64 labels")
      .meta({ maxProperties: 64 })
      .optional()
      .describe(
        "image labels; to override the detected entrypoint use `entrypoint` (the repos file's io.iac.entrypoint label)",
      ),
    env: z
      .record(envName, z.string().max(4096).regex(NO_NUL, "must not contain NUL"))
      .refine((e) => Object.keys(e).length <= 100, "at most 100 variables")
      .meta({ maxProperties: 100 })
      .optional()
      .describe("environment of the app; names that differ only in case are refused (422)"),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .refine((p) => !RESERVED_PORTS.includes(p), {
        message: `reserved: ${RESERVED_PORTS.join(", ")} belong to the sidecar and the runner`,
      })
      .meta({ not: { enum: [...RESERVED_PORTS] } })
      .optional()
      .describe("the port the app serves its peers on (127.0.0.1); none = not reachable by peers"),
    resources: z
      .object({
        memory: z
          .union([
            z.string().regex(MEMORY_RE, "a size from 16m to 64g, like 512m or 1g"),
            z.number().min(16).max(65_536),
          ])
          .optional()
          .describe("MiB as a number, or 512m / 1g (16 MiB to 64 GiB)"),
        cpus: z.number().min(0.1).max(64).optional(),
        pids: z.number().int().min(16).max(32_768).optional(),
      })
      .strict()
      .optional()
      .describe("container limits (default memory 512m, cpus 1, pids 256)"),
  })
  .strict();

export const deployBodySchema = z
  .object({
    project: dnsLabel.optional().describe("project name (default: IAC_PROJECT)"),
    slugs: z
      .array(slug)
      .min(1, "give at least one slug")
      .max(MAX_SERVICES, `at most ${MAX_SERVICES} slugs per deploy`)
      .optional()
      .describe(
        "two slugs that give the same service name are refused (422): use `services` with `name`",
      ),
    services: z
      .array(serviceItemSchema)
      .min(1, "give at least one service")
      .max(MAX_SERVICES, `at most ${MAX_SERVICES} services per deploy`)
      .optional()
      .describe("two entries with the same service name are refused (422)"),
  })
  .strict()
  .refine((b) => (b.slugs === undefined) !== (b.services === undefined), {
    message: "give exactly one of `slugs` or `services`",
    path: ["slugs"],
  })
  .meta({ oneOf: [{ required: ["slugs"] }, { required: ["services"] }] });
export type DeployBody = z.infer<typeof deployBodySchema>;

export const destroyBodySchema = z
  .object({ project: dnsLabel.optional().describe("project name (default: IAC_PROJECT)") })
  .strict();

export const rollbackBodySchema = z
  .object({
    project: dnsLabel.optional().describe("project name (default: IAC_PROJECT)"),
    to: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("release number (default: the previous one)"),
  })
  .strict();

const boolish = z
  .enum(["1", "0", "true", "false", "yes", "no"])
  .transform((v) => v === "1" || v === "true" || v === "yes");

export const projectQuerySchema = z.object({ project: dnsLabel.optional() });

export const logsQuerySchema = z.object({
  project: dnsLabel.optional(),
  tail: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(100)
    .describe("most recent lines first; 0 = all buffered"),
  follow: boolish.default(false).describe("keep streaming new lines"),
});

export const serviceParamsSchema = z.object({ name: dnsLabel });
export const deploymentParamsSchema = z.object({ id: z.uuid("expected a deployment id (UUID)") });

/** A request that does not match its schema: a UsageError naming every failing field. */
export class RequestValidationError extends UsageError {
  override name = "RequestValidationError";
  constructor(
    readonly where: "body" | "query" | "params",
    readonly issues: Array<{ field: string; message: string }>,
    hint?: string,
  ) {
    const first = issues[0];
    super(
      `invalid ${where}: ${first ? `${first.field || "(root)"}: ${first.message}` : "bad request"}`,
      hint,
      { field: first?.field },
    );
  }
}

/**
 * A request that matches its schema but breaks a rule JSON Schema cannot state (two services
 * with one name, env names that differ only in case): 422 over HTTP, INVALID_ARGUMENT over gRPC.
 */
export class UnprocessableRequestError extends UsageError {
  override name = "UnprocessableRequestError";
  constructor(message: string, hint: string | undefined, field: string) {
    super(message, hint, { field });
  }
}

/** Parses or throws RequestValidationError naming the failing field (e.g. `slugs.2`). */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: "body" | "query" | "params",
): z.infer<S> {
  const r = schema.safeParse(value ?? (where === "body" ? undefined : {}));
  if (r.success) return r.data;
  throw new RequestValidationError(
    where,
    r.error.issues.map((i) => ({
      field: i.path.map(String).join("."),
      message:
        i.code === "unrecognized_keys" ? `unknown field(s): ${i.keys.join(", ")}` : i.message,
    })),
  );
}
