// GET /openapi.json: the admin API described as OpenAPI 3.1 (request bodies generated from
// the same zod schemas the routes validate with).
import { z } from "zod";
import { deployBodySchema, destroyBodySchema, MAX_BODY_BYTES, MAX_SERVICES } from "./schemas.js";

function schema(s: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(s, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

const errorBody = {
  type: "object",
  required: ["error", "message"],
  properties: {
    error: { type: "string", description: "machine-readable code" },
    message: { type: "string" },
    hint: { type: "string" },
    field: { type: "string", description: "the failing field (400)" },
    id: { type: "string", description: "the running deployment (409)" },
  },
};

const json = (s: unknown) => ({ "application/json": { schema: s } });
const sse = (description: string) => ({
  "text/event-stream": {
    schema: { type: "string" },
    description,
  },
});
const err = (description: string) => ({
  description,
  content: json({ $ref: "#/components/schemas/Error" }),
});

const authErrors = {
  "401": {
    ...err('missing or invalid bearer token (`WWW-Authenticate: Bearer error="invalid_token"`)'),
  },
  "403": err(
    "authenticated, but neither the service role nor a user with an admin role in app_metadata",
  ),
  "503": err("Supabase Auth unreachable, or auth not configured on this server (fails closed)"),
};

const deploymentEvents =
  "Server-Sent Events: `event: stage|log|result|error`, `id:` = sequence number, `data:` = JSON. " +
  "`stage` {ts, service?, stage, message?}; `log` {ts, service?, source, line}; the final `result` carries " +
  "the DeployReport {project, services:[{name, slug, commit, entrypoint, image, status, port, error}]}; " +
  "`error` {message, hint} when the pipeline failed as a whole.";

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "iac-wrapper admin API",
      version: "0.1.0",
      description:
        "Drives the deploy pipeline. TCP (IAC_HTTP_ADDR, default 127.0.0.1:8080) requires " +
        "`Authorization: Bearer <token>`: the Supabase service role key, or a Supabase user access token " +
        "whose app_metadata role(s) include an admin role (IAC_ADMIN_ROLES). The Unix socket " +
        "(IAC_SOCKET_PATH, mode 0600) is trusted by its file permissions unless IAC_SOCKET_REQUIRE_AUTH=1. " +
        `Bodies are limited to ${MAX_BODY_BYTES} bytes and ${MAX_SERVICES} services per deploy.`,
    },
    servers: [{ url: "http://127.0.0.1:8080" }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT or sb_secret_ key" },
      },
      schemas: {
        Error: errorBody,
        DeployBody: schema(deployBodySchema),
        DestroyBody: schema(destroyBodySchema),
        Deployment: {
          type: "object",
          properties: {
            id: { type: "string", format: "uuid" },
            kind: { enum: ["deploy", "destroy"] },
            project: { type: "string" },
            status: { enum: ["running", "succeeded", "failed", "cancelled"] },
            created_at: { type: "string", format: "date-time" },
            finished_at: { type: "string", format: "date-time" },
            services: { type: "array", items: { type: "object" } },
            events: { type: "integer" },
            result: { type: "object", description: "DeployReport (deploy) or {removed} (destroy)" },
            error: {
              type: "object",
              properties: { message: { type: "string" }, hint: { type: "string" } },
            },
          },
        },
      },
    },
    paths: {
      "/health": {
        get: {
          summary: "Control-plane health (Docker reachable, terraform present)",
          security: [],
          responses: {
            "200": { description: "healthy", content: json({ type: "object" }) },
            "503": {
              description: "a check failed (details in `checks`)",
              content: json({ type: "object" }),
            },
          },
        },
      },
      "/openapi.json": {
        get: {
          summary: "This document",
          security: [],
          responses: { "200": { description: "OpenAPI 3.1" } },
        },
      },
      "/deploy": {
        post: {
          summary:
            "Deploy slugs as one project (asynchronous; or streamed with Accept: text/event-stream)",
          requestBody: {
            required: true,
            content: json({ $ref: "#/components/schemas/DeployBody" }),
          },
          responses: {
            "202": {
              description: "started",
              headers: { Location: { schema: { type: "string" } } },
              content: json({
                type: "object",
                properties: {
                  id: { type: "string" },
                  project: { type: "string" },
                  status: { type: "string" },
                  status_url: { type: "string" },
                  logs_url: { type: "string" },
                },
              }),
            },
            "200": {
              description: "with Accept: text/event-stream",
              content: sse(deploymentEvents),
            },
            "400": err("invalid body: `field` names the failing field"),
            "409": err("a deploy or destroy of this project is running; `id` is its deployment id"),
            "413": err("body larger than the limit"),
            ...authErrors,
          },
        },
      },
      "/destroy": {
        post: {
          summary: "Destroy a project (everything labelled io.iac.project=<project>)",
          requestBody: {
            required: false,
            content: json({ $ref: "#/components/schemas/DestroyBody" }),
          },
          responses: {
            "200": {
              description: "destroyed (or an event stream with Accept: text/event-stream)",
              content: {
                ...json({
                  type: "object",
                  properties: {
                    id: { type: "string" },
                    project: { type: "string" },
                    removed: { type: "array", items: { type: "string" } },
                  },
                }),
                ...sse(deploymentEvents),
              },
            },
            "409": err("a deploy or destroy of this project is running"),
            ...authErrors,
          },
        },
      },
      "/deployments": {
        get: {
          summary: "Recent deployments (in memory, newest first)",
          responses: {
            "200": {
              description: "list",
              content: json({ type: "array", items: { $ref: "#/components/schemas/Deployment" } }),
            },
            ...authErrors,
          },
        },
      },
      "/deployments/{id}": {
        get: {
          summary: "One deployment's status and report",
          parameters: [
            { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } },
          ],
          responses: {
            "200": {
              description: "the deployment",
              content: json({ $ref: "#/components/schemas/Deployment" }),
            },
            "404": err("unknown id"),
            ...authErrors,
          },
        },
      },
      "/deployments/{id}/cancel": {
        post: {
          summary: "Abort a running deployment (the pipeline stops at its next cancellation point)",
          parameters: [
            { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } },
          ],
          responses: {
            "202": { description: "cancelling; the deployment ends with status `cancelled`" },
            "404": err("unknown id"),
            "409": err("already finished"),
            ...authErrors,
          },
        },
      },
      "/deployments/{id}/logs": {
        get: {
          summary:
            "A deployment's events: replay, then follow until it finishes (SSE; honours Last-Event-ID)",
          parameters: [
            { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } },
          ],
          responses: {
            "200": { description: "event stream", content: sse(deploymentEvents) },
            "404": err("unknown id"),
            ...authErrors,
          },
        },
      },
      "/services": {
        get: {
          summary: "Health of each deployed service (gRPC HealthCheck over mTLS)",
          parameters: [{ name: "project", in: "query", schema: { type: "string" } }],
          responses: {
            "200": {
              description:
                "{project, services: [{name, status, phase, exitCode, restarts, uptimeSeconds, message, port}]}",
              content: json({ type: "object" }),
            },
            "404": err("the project has no deployed services"),
            ...authErrors,
          },
        },
      },
      "/services/{name}/logs": {
        get: {
          summary:
            "A service's main() output from the runner's StreamLogs (SSE `event: log` {ts, msg, stream}, then `event: end`)",
          parameters: [
            { name: "name", in: "path", required: true, schema: { type: "string" } },
            { name: "project", in: "query", schema: { type: "string" } },
            {
              name: "tail",
              in: "query",
              schema: { type: "integer", minimum: 0, maximum: 10000, default: 100 },
            },
            { name: "follow", in: "query", schema: { type: "boolean", default: false } },
          ],
          responses: {
            "200": {
              description: "event stream",
              content: sse("`event: log` per line, `event: end` when done"),
            },
            "404": err("no such service"),
            ...authErrors,
          },
        },
      },
    },
  };
}
