// GET /openapi.json: the admin API as OpenAPI 3.1, generated from the route table
// (contract.ts) and the zod schemas the handlers validate with (z.toJSONSchema). Nothing in it
// is written by hand but the prose; test/contract/ runs schemathesis against it.
import { z } from "zod";
import { openApiPath, responsesOf, ROUTES, type ResponseSpec, type RouteSpec } from "./contract.js";
import { MAX_BODY_BYTES, MAX_SERVICES } from "./schemas.js";

type Json = Record<string, unknown>;

function jsonSchema(s: z.ZodType, io: "input" | "output"): Json {
  const out = z.toJSONSchema(s, { io, unrepresentable: "any" }) as Json;
  delete out.$schema;
  return out;
}

/** One SSE event as schemathesis and OpenAPI 3.1 read it: {event, data (JSON text), id?}. */
function sseEventSchema(events: Record<string, z.ZodType>): Json {
  return {
    oneOf: Object.entries(events).map(([name, data]) => ({
      type: "object",
      required: ["event", "data"],
      properties: {
        event: { const: name },
        id: { type: "string", description: "sequence number (resume with Last-Event-ID)" },
        data: {
          type: "string",
          contentMediaType: "application/json",
          contentSchema: jsonSchema(data, "output"),
        },
      },
    })),
  };
}

function response(r: ResponseSpec): Json {
  const content: Json = {};
  if (r.json) content["application/json"] = { schema: jsonSchema(r.json, "output") };
  if (r.sse) {
    content["text/event-stream"] = {
      schema: sseEventSchema(r.sse),
      description: `one frame per event: \`event: <name>\`, \`data: <one line of JSON>\`; events: ${Object.keys(r.sse).join(", ")}`,
    };
  }
  const out: Json = { description: r.description };
  if (Object.keys(content).length) out.content = content;
  if (r.headers) out.headers = r.headers;
  return out;
}

function parameters(route: RouteSpec): Json[] {
  const out: Json[] = [];
  const add = (where: "path" | "query", s: z.ZodType | undefined) => {
    if (!s) return;
    const obj = jsonSchema(s, "input") as {
      properties?: Record<string, Json>;
      required?: string[];
    };
    for (const [name, schema] of Object.entries(obj.properties ?? {})) {
      const { description, ...rest } = schema;
      out.push({
        name,
        in: where,
        required: where === "path" || (obj.required ?? []).includes(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  };
  add("path", route.params);
  add("query", route.query);
  return out;
}

function operation(route: RouteSpec): Json {
  const op: Json = {
    operationId: `${route.method.toLowerCase()}${openApiPath(route.path)
      .replace(/[{}]/g, "")
      .split(/[/._-]/)
      .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : ""))
      .join("")}`,
    summary: route.summary,
  };
  if (route.public) op.security = [];
  const params = parameters(route);
  if (params.length) op.parameters = params;
  if (route.body) {
    op.requestBody = {
      required: route.body.required,
      content: { "application/json": { schema: jsonSchema(route.body.schema, "input") } },
    };
  }
  op.responses = Object.fromEntries(
    Object.entries(responsesOf(route))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([status, r]) => [status, response(r)]),
  );
  return op;
}

export function openApiDocument(): Json {
  const paths: Record<string, Json> = {};
  for (const route of ROUTES) {
    const p = (paths[openApiPath(route.path)] ??= {});
    p[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "iac-wrapper admin API",
      version: "0.2.0",
      description:
        "Drives the deploy pipeline. TCP (IAC_HTTP_ADDR, default 127.0.0.1:8080) requires " +
        "`Authorization: Bearer <token>`: the Supabase service role key, or a Supabase user access token " +
        "whose app_metadata role(s) include an admin role (IAC_ADMIN_ROLES). The Unix socket " +
        "(IAC_SOCKET_PATH, mode 0600) is trusted by its file permissions unless IAC_SOCKET_REQUIRE_AUTH=1. " +
        `Bodies are limited to ${MAX_BODY_BYTES} bytes and ${MAX_SERVICES} services per deploy. ` +
        "A method a path does not declare is answered 405 with `Allow`. " +
        "400 means the request does not match this document; 422 that it does, but breaks a rule " +
        "JSON Schema cannot state (two services with one name).",
    },
    servers: [{ url: "http://127.0.0.1:8080" }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT or sb_secret_ key" },
      },
    },
    paths,
  };
}
