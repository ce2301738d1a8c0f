// Request schemas of the admin API (zod). They validate shape and limits; the slugs
// themselves are parsed by the same code as the repos file (400 naming the bad one).
import { z } from "zod";
import { RESERVED_PORTS } from "../kernel/contract.js";
import { UsageError } from "../kernel/errors.js";
import { DNS_LABEL_RE } from "../kernel/names.js";

export const MAX_SERVICES = 50;
export const MAX_BODY_BYTES = 64 * 1024;

const dnsLabel = z
  .string()
  .regex(DNS_LABEL_RE, "expected a DNS label: lowercase letters, digits and '-', <= 63 chars");

const slug = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(512, "at most 512 characters")
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f\s]+$/, "must not contain whitespace or control characters")
  .describe("gh:owner/repo[//subdir][#ref], git+https://host/path.git[#ref] or file:path");

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "expected an environment variable name");

export const serviceItemSchema = z
  .object({
    slug,
    name: dnsLabel.optional().describe("service name (default: the repo name)"),
    entrypoint: z
      .union([z.string().min(1).max(1024), z.array(z.string().max(1024)).min(1).max(64)])
      .optional()
      .describe("argv override (string or list)"),
    env: z
      .record(envName, z.string().max(4096))
      .refine((e) => Object.keys(e).length <= 100, "at most 100 variables")
      .optional(),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .refine((p) => !RESERVED_PORTS.includes(p), {
        message: `reserved: ${RESERVED_PORTS.join(", ")} belong to the sidecar and the runner`,
      })
      .optional()
      .describe("the port the app serves its peers on (127.0.0.1); none = not reachable by peers"),
    resources: z
      .object({
        memory: z.union([z.string().max(16), z.number()]).optional(),
        cpus: z.number().optional(),
        pids: z.number().int().optional(),
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
      .optional(),
    services: z
      .array(serviceItemSchema)
      .min(1, "give at least one service")
      .max(MAX_SERVICES, `at most ${MAX_SERVICES} services per deploy`)
      .optional(),
  })
  .strict()
  .refine((b) => (b.slugs === undefined) !== (b.services === undefined), {
    message: "give exactly one of `slugs` or `services`",
    path: ["slugs"],
  });
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
