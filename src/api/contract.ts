// The admin API's contract, declared once: every route with its method, path, request schemas
// (the zod schemas the handlers validate with), responses (zod schemas of what they send, SSE
// events included) and the error statuses it can answer. GET /openapi.json is generated from
// this table (openapi.ts), the 405 handler reads its paths and methods (plugins/errors.ts), and
// test/component/api-contract.test.ts checks that the registered routes are exactly these.
import { z } from "zod";
import {
  deployBodySchema,
  deploymentParamsSchema,
  destroyBodySchema,
  logsQuerySchema,
  projectQuerySchema,
  rollbackBodySchema,
  serviceParamsSchema,
} from "./schemas.js";

// ---- response bodies ---------------------------------------------------------------------
// Loose objects: the documented fields are checked, fields added later do not break clients.

export const errorSchema = z.looseObject({
  error: z.string().describe("machine-readable code, e.g. invalid_request, project_busy"),
  message: z.string(),
  hint: z.string().optional().describe("what to do about it"),
  field: z.string().optional().describe("the failing field (400), e.g. `slugs.1`"),
  issues: z
    .array(z.looseObject({ field: z.string(), message: z.string() }))
    .optional()
    .describe("every failing field (400)"),
  id: z.string().optional().describe("the running or finished deployment (409)"),
});

const ts = z.string().describe("ISO 8601 time");

export const serviceReportSchema = z.looseObject({
  name: z.string(),
  slug: z.string(),
  commit: z.string().optional(),
  entrypoint: z
    .looseObject({ kind: z.string(), argv: z.array(z.string()), rule: z.string() })
    .optional(),
  image: z.string().optional(),
  status: z.enum(["SERVING", "NOT_SERVING", "FAILED"]),
  port: z.number().int().optional(),
  error: z.string().optional(),
});

export const deployReportSchema = z.looseObject({
  project: z.string(),
  services: z.array(serviceReportSchema),
  release: z.number().int().optional(),
  applied: z.boolean().optional(),
  containersRecreated: z.array(z.string()).optional(),
  rolled_back_to: z.number().int().optional(),
});

const links = {
  status_url: z.string(),
  logs_url: z.string(),
};

const operationKind = z.enum(["deploy", "destroy", "rollback"]);
const operationStatus = z.enum(["running", "succeeded", "failed", "cancelled"]);

export const startedSchema = z.looseObject({
  id: z.uuid(),
  project: z.string(),
  status: operationStatus,
  ...links,
});

export const deploymentSchema = z.looseObject({
  id: z.uuid(),
  kind: operationKind,
  project: z.string(),
  status: operationStatus,
  created_at: ts,
  finished_at: ts.optional(),
  services: z.array(z.looseObject({ name: z.string(), slug: z.string() })),
  events: z.number().int().describe("events recorded so far"),
  result: z.unknown().optional().describe("DeployReport (deploy, rollback) or {removed} (destroy)"),
  error: z.looseObject({ message: z.string(), hint: z.string().optional() }).optional(),
  ...links,
});

const serviceHealthSchema = z.looseObject({
  name: z.string(),
  status: z.enum(["SERVING", "NOT_SERVING", "UNKNOWN", "UNREACHABLE"]),
  phase: z.string().optional(),
  exitCode: z.number().int().optional(),
  restarts: z.number().int().optional(),
  uptimeSeconds: z.number().optional(),
  message: z.string().optional(),
  port: z.number().int().optional(),
});

const releaseSchema = z.looseObject({
  number: z.number().int(),
  time: ts,
  principal: z.string(),
  kind: z.enum(["deploy", "rollback"]),
  rollback_of: z.number().int().optional(),
  network: z.string(),
  services: z.array(
    z.looseObject({ name: z.string(), slug: z.string(), commit: z.string(), image: z.string() }),
  ),
});

const projectStatusSchema = z.looseObject({
  project: z.string(),
  state: z.enum(["deployed", "no-state", "stopped"]),
  network: z.string().optional(),
  since: ts.optional(),
  age_seconds: z.number().optional(),
  services: z.array(
    z.looseObject({
      name: z.string(),
      status: z.string(),
      containers: z.array(z.looseObject({ name: z.string(), state: z.string() })),
    }),
  ),
});

const controlPlaneHealthSchema = z.looseObject({
  ok: z.boolean(),
  checks: z.record(
    z.string(),
    z.looseObject({ ok: z.boolean(), detail: z.string().optional().describe("admins only") }),
  ),
  auth: z.looseObject({ configured: z.boolean() }),
});

// ---- Server-Sent Events --------------------------------------------------------------------
// Each event: `id:` (sequence number), `event:` (its type), `data:` (one line of JSON, below).

const stageNames = z.enum([
  "images",
  "queued",
  "fetch",
  "detect",
  "build",
  "certs",
  "plan",
  "apply",
  "health",
  "destroy",
  "done",
  "failed",
]);

/** The JSON in `data:` per `event:` of a deployment's stream. */
export const deploymentEventData = {
  deployment: z
    .looseObject({ id: z.uuid(), kind: operationKind, project: z.string(), ...links })
    .describe("first event of a stream that started the operation"),
  stage: z.looseObject({
    type: z.literal("stage"),
    ts,
    service: z.string().optional(),
    stage: stageNames,
    message: z.string().optional(),
  }),
  log: z.looseObject({
    type: z.literal("log"),
    ts,
    service: z.string().optional(),
    source: z.enum(["fetch", "build", "terraform", "health", "pipeline"]),
    line: z.string(),
  }),
  result: z
    .looseObject({ type: z.literal("result"), ts, result: z.unknown() })
    .describe("the last event: `result` is the DeployReport (or {removed} for a destroy)"),
  error: z
    .looseObject({
      type: z.literal("error"),
      ts,
      message: z.string(),
      hint: z.string().optional(),
    })
    .describe("the last event when the operation failed as a whole"),
} satisfies Record<string, z.ZodType>;

/** The JSON in `data:` per `event:` of GET /services/{name}/logs. */
export const serviceLogEventData = {
  log: z.looseObject({ ts, msg: z.string(), stream: z.string() }),
  error: z.looseObject({ message: z.string() }).describe("the log stream broke off"),
  end: z.looseObject({ service: z.string(), project: z.string() }).describe("the last event"),
} satisfies Record<string, z.ZodType>;

// ---- routes --------------------------------------------------------------------------------

export interface ResponseSpec {
  description: string;
  json?: z.ZodType;
  /** An event stream: `data:` JSON schema per event name. */
  sse?: Record<string, z.ZodType>;
  headers?: Record<string, { description: string; schema: Record<string, unknown> }>;
}

export interface RouteSpec {
  method: "GET" | "POST";
  /** fastify syntax (`/deployments/:id`). */
  path: string;
  summary: string;
  /** No authentication. */
  public?: boolean;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: { schema: z.ZodType; required: boolean };
  /** The answers this operation gives (success and errors). */
  responses: Record<string, ResponseSpec>;
}

const e = (description: string): ResponseSpec => ({ description, json: errorSchema });

/** Answers every authenticated operation can give. */
const authErrors: Record<string, ResponseSpec> = {
  "401": {
    description:
      'missing or invalid bearer token (`WWW-Authenticate: Bearer error="invalid_token"`)',
    json: errorSchema,
    headers: {
      "WWW-Authenticate": { description: "Bearer challenge", schema: { type: "string" } },
    },
  },
  "403": e(
    "authenticated, but neither the service role nor a user with an admin role in app_metadata",
  ),
  "429": {
    description:
      "too many authentication attempts that Supabase had to check (per client); `Retry-After`",
    json: errorSchema,
    headers: { "Retry-After": { description: "seconds", schema: { type: "string" } } },
  },
  "503": {
    description:
      "Supabase Auth unreachable, or auth not configured on this server (fails closed); or the Docker engine is not reachable (`docker_unavailable`); `Retry-After`",
    json: errorSchema,
    headers: { "Retry-After": { description: "seconds", schema: { type: "string" } } },
  },
};

/** Any request can be malformed (bad percent-encoding in the URL, a bad parameter). */
const badRequest = e("the request does not match this operation; `field` names what failed");
const withBody = {
  "413": e("body larger than the limit (64 KiB)"),
  "415": e("body that is not application/json"),
};
const busy = e(
  "another deploy, rollback or destroy of this project is running; `id` is its deployment id",
);
const tooMany = e(
  "too many operations running at once on this server, or too many open event streams (per caller, in all)",
);
const eventStream = (events: Record<string, z.ZodType>, description: string): ResponseSpec => ({
  description,
  sse: events,
});

const startedResponses = (what: string): Record<string, ResponseSpec> => ({
  "202": {
    description: `${what} started; follow it at status_url / logs_url`,
    json: startedSchema,
    headers: {
      Location: { description: "the deployment's status URL", schema: { type: "string" } },
    },
  },
  "200": eventStream(
    deploymentEventData,
    "with `Accept: text/event-stream`: the operation's events until it ends",
  ),
});

export const ROUTES: RouteSpec[] = [
  {
    method: "GET",
    path: "/health",
    summary: "Control-plane health (Docker reachable, terraform present)",
    public: true,
    responses: {
      "200": { description: "healthy", json: controlPlaneHealthSchema },
      "400": badRequest,
      "503": { description: "a check failed (which in `checks`)", json: controlPlaneHealthSchema },
    },
  },
  {
    method: "GET",
    path: "/openapi.json",
    summary: "This document",
    public: true,
    responses: {
      "200": { description: "OpenAPI 3.1", json: z.looseObject({ openapi: z.string() }) },
      "400": badRequest,
    },
  },
  {
    method: "POST",
    path: "/deploy",
    summary:
      "Deploy services as one project (asynchronous; or streamed with Accept: text/event-stream)",
    body: { schema: deployBodySchema, required: true },
    responses: {
      ...startedResponses("deploy"),
      "400": badRequest,
      "403": e(
        "not an admin (see 401), or a `file:` slug over TCP (local folders only over the Unix socket)",
      ),
      "409": busy,
      ...withBody,
      "422": e(
        "the body matches the schema, but two services end up with the same name, or env names differ only in case",
      ),
      "429": tooMany,
    },
  },
  {
    method: "POST",
    path: "/rollback",
    summary: "Redeploy a recorded release's images (default: the previous release)",
    body: { schema: rollbackBodySchema, required: false },
    responses: {
      ...startedResponses("rollback"),
      "400": badRequest,
      "409": busy,
      ...withBody,
      "429": tooMany,
    },
  },
  {
    method: "POST",
    path: "/destroy",
    summary: "Destroy a project (everything labelled io.iac.project=<project>)",
    body: { schema: destroyBodySchema, required: false },
    responses: {
      "200": {
        description: "destroyed; or, with `Accept: text/event-stream`, the destroy's events",
        json: z.looseObject({ id: z.uuid(), project: z.string(), removed: z.array(z.string()) }),
        sse: deploymentEventData,
      },
      "400": badRequest,
      "409": busy,
      ...withBody,
      "429": tooMany,
      "500": e("the destroy failed (`hint` says what to do; the label sweep still ran)"),
    },
  },
  {
    method: "GET",
    path: "/deployments",
    summary: "Recent deployments (newest first; kept across restarts)",
    responses: {
      "200": { description: "list", json: z.array(deploymentSchema) },
      "400": badRequest,
    },
  },
  {
    method: "GET",
    path: "/deployments/:id",
    summary: "One deployment's status and report",
    params: deploymentParamsSchema,
    responses: {
      "200": { description: "the deployment", json: deploymentSchema },
      "400": badRequest,
      "404": e("no deployment with this id"),
    },
  },
  {
    method: "POST",
    path: "/deployments/:id/cancel",
    summary: "Abort a running deployment (it stops at its next cancellation point)",
    params: deploymentParamsSchema,
    responses: {
      "202": {
        description: "cancelling; the deployment ends with status `cancelled`",
        json: z.looseObject({ id: z.uuid(), status: z.literal("cancelling"), ...links }),
      },
      "400": badRequest,
      "404": e("no deployment with this id"),
      "409": e("the deployment already finished"),
    },
  },
  {
    method: "GET",
    path: "/deployments/:id/logs",
    summary: "A deployment's events: replay, then follow until it ends (honours Last-Event-ID)",
    params: deploymentParamsSchema,
    responses: {
      "200": eventStream(deploymentEventData, "the events, `id:` = sequence number"),
      "400": badRequest,
      "404": e("no deployment with this id"),
      "429": tooMany,
    },
  },
  {
    method: "GET",
    path: "/services",
    summary: "Health of each deployed service (gRPC HealthCheck over mTLS)",
    query: projectQuerySchema,
    responses: {
      "200": {
        description: "the services (none: an empty list)",
        json: z.looseObject({ project: z.string(), services: z.array(serviceHealthSchema) }),
      },
      "400": badRequest,
    },
  },
  {
    method: "GET",
    path: "/services/:name/logs",
    summary: "A service's main() output from the runner's buffer (StreamLogs)",
    params: serviceParamsSchema,
    query: logsQuerySchema,
    responses: {
      "200": eventStream(serviceLogEventData, "`log` per line, then `end`"),
      "400": badRequest,
      "404": e("no such service in the project"),
      "429": tooMany,
    },
  },
  {
    method: "GET",
    path: "/releases",
    summary: "A project's recorded releases (oldest first; none: an empty list)",
    query: projectQuerySchema,
    responses: {
      "200": {
        description: "the releases",
        json: z.looseObject({ project: z.string(), releases: z.array(releaseSchema) }),
      },
      "400": badRequest,
    },
  },
  {
    method: "GET",
    path: "/status",
    summary: "Every project on this Docker engine: services, health, current release, age",
    responses: {
      "200": {
        description: "the projects",
        json: z.looseObject({ projects: z.array(projectStatusSchema) }),
      },
      "400": badRequest,
    },
  },
];

/** Every authenticated route also answers these. */
export function responsesOf(route: RouteSpec): Record<string, ResponseSpec> {
  if (route.public) return route.responses;
  const out: Record<string, ResponseSpec> = { ...authErrors };
  for (const [status, r] of Object.entries(route.responses)) {
    const a = out[status];
    out[status] = a
      ? { ...a, ...r, description: `${a.description}; or ${r.description}`, headers: a.headers }
      : r;
  }
  return out;
}

/** `/deployments/:id` -> `/deployments/{id}`. */
export const openApiPath = (p: string): string => p.replace(/:([A-Za-z_]+)/g, "{$1}");

const matchers = [...new Set(ROUTES.map((r) => r.path))].map((p) => ({
  re: new RegExp(`^${p.replace(/:[A-Za-z_]+/g, "[^/]+")}/?$`),
  methods: ROUTES.filter((r) => r.path === p).map((r) => r.method),
}));

/**
 * The methods a declared path accepts (GET implies HEAD), or undefined when no route has
 * this path: the difference between 405 and 404.
 */
export function allowedMethods(urlPath: string): string[] | undefined {
  const m = matchers.find((x) => x.re.test(urlPath));
  if (!m) return undefined;
  return m.methods.flatMap((x) => (x === "GET" ? ["GET", "HEAD"] : [x]));
}
