// The repos file (YAML or JSON; JSON is read as YAML 1.2) -> ServiceSpec[]. Accepted shapes:
//   - gh:owner/repo#ref                      a top-level list of slugs (or entries, below)
//   services: [ {slug, name?, entrypoint?, env?, port?, resources?, replicas?, placement?,
//                build?, labels?, telemetry?} | "slug", ... ]
//   slugs: [ "slug", ... ]                   (the admin API's POST /deploy body)
// Every error names the file (or origin), the entry (numbered from 1, and its slug) and what is wrong.
// Two entries that end up with the same service name are an error (not a silent suffix):
// a suffix would depend on list order, and reordering the file would then rename services.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseDocument } from "yaml";
import { RESERVED_PORTS } from "../kernel/contract.js";
import { IacError, UsageError } from "../kernel/errors.js";
import { DNS_LABEL_HINT, isDnsLabel } from "../kernel/names.js";
import { parseSlug, serviceNameFor, type ParseSlugOptions } from "./slug.js";
import { parseResources } from "./resources.js";
import type { BuildMode, ServiceSpec, TelemetryMode } from "../kernel/types.js";
import { ENTRYPOINT_LABEL, labelArgv } from "../detect/dockerfile.js";
import { PROCESS_NAME_RE } from "../detect/procfile.js";

const ENTRY_KEYS = new Set([
  "slug",
  "name",
  "entrypoint",
  "env",
  "port",
  "resources",
  "replicas",
  "placement",
  "build",
  "labels",
  "telemetry",
]);
/** Swarm placement constraint: node.<attr> == / != value (what `docker service create --constraint` takes). */
const CONSTRAINT_RE = /^node\.[A-Za-z0-9_.-]+\s*(==|!=)\s*[A-Za-z0-9_.:/-]+$/;
const MAX_REPLICAS = 100;

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHAPE_HINT =
  "a repos file is a list of slugs, or {services: [{slug, name?, entrypoint?, env?, port?}]}, e.g.\n" +
  "  services:\n    - slug: gh:pypa/sampleproject#main\n      name: sample";

/** The most services one repos file (or API request) may list: IAC_MAX_SERVICES. */
export const DEFAULT_MAX_SERVICES = 50;

export interface ParseServiceListOptions {
  /** Passed to parseSlug (e.g. {allowFile: false} for remote API callers). */
  allowFile?: ParseSlugOptions["allowFile"];
  /** Refuse longer lists (default DEFAULT_MAX_SERVICES). */
  maxServices?: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Splits an entrypoint string on whitespace (no shell semantics: no quotes, no variables). */
export function parseEntrypointValue(value: unknown, where: string): string[] {
  let argv: string[];
  if (typeof value === "string") argv = value.trim().split(/\s+/).filter(Boolean);
  else if (Array.isArray(value) && value.every((v) => typeof v === "string"))
    argv = value as string[];
  else
    throw new UsageError(
      `${where}: entrypoint must be a string or a list of strings`,
      'e.g. entrypoint: "python -m myapp" or entrypoint: ["python", "-m", "myapp"]',
    );
  if (argv.length === 0 || argv.some((a) => a.length === 0))
    throw new UsageError(`${where}: entrypoint is empty or has an empty argument`);
  if (argv.some((a) => a.includes("\0")))
    throw new UsageError(`${where}: entrypoint contains a NUL byte`);
  return argv;
}

/**
 * Names an app's `env` may not set: IAC_* and OTEL_* configure the runner and its telemetry
 * (IAC_LISTEN=0.0.0.0:50051 would expose the plaintext runner, IAC_ALLOWED_CALLERS would widen
 * who may call); the Terraform module sets them itself.
 */
export function reservedEnvName(name: string): boolean {
  return /^(IAC|OTEL)_/i.test(name);
}

function parseEnv(value: unknown, where: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new UsageError(`${where}: env must be a mapping of NAME: value`);
  const env: Record<string, string> = {};
  const seen = new Map<string, string>();
  for (const [key, v] of Object.entries(value)) {
    if (!ENV_KEY_RE.test(key))
      throw new UsageError(
        `${where}: env name '${key}' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)`,
      );
    if (reservedEnvName(key))
      throw new UsageError(
        `${where}: env name '${key}' is reserved (IAC_* and OTEL_* configure the runner)`,
        "rename the variable; OTEL_EXPORTER_OTLP_ENDPOINT is set for every service from the control plane's environment",
      );
    const folded = key.toUpperCase();
    if (seen.has(folded))
      throw new UsageError(
        `${where}: env names '${seen.get(folded)}' and '${key}' differ only in case`,
        "give each variable one spelling",
      );
    seen.set(folded, key);
    if (typeof v === "string") env[key] = v;
    else if (typeof v === "number" || typeof v === "boolean") env[key] = String(v);
    else throw new UsageError(`${where}: env ${key} must be a string, number or boolean`);
    if (env[key]!.includes("\0")) throw new UsageError(`${where}: env ${key} contains a NUL byte`);
  }
  return env;
}

/**
 * `port:` = the port the app serves its peers on (gRPC, on 127.0.0.1 of its container): the
 * sidecar routes peer traffic there. None = the service is not reachable by peers.
 */
export function parsePortValue(value: unknown, where: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535)
    throw new UsageError(
      `${where}: port ${JSON.stringify(value)} is not a port number (an integer 1-65535)`,
      "port: is the port your app serves its peers on, on 127.0.0.1, e.g. port: 8080",
    );
  if (RESERVED_PORTS.includes(value))
    throw new UsageError(
      `${where}: port ${value} is reserved (${RESERVED_PORTS.join(", ")} belong to the sidecar and the runner)`,
      "serve your app on another port, e.g. port: 8080",
    );
  return value;
}

function parseEntry(
  entry: unknown,
  index: number,
  origin: string,
  baseDir: string,
  opts: ParseServiceListOptions,
  /** The entry's path in the document (`slugs.2`, `services.0`): UsageError.field. */
  base: string,
): ServiceSpec {
  const slugOpts = { baseDir, allowFile: opts.allowFile };
  if (typeof entry === "string") {
    const where = `${origin}: entry ${index + 1} (${entry})`;
    const slug = withWhere(where, base, () => parseSlug(entry, slugOpts));
    return { name: serviceNameFor(slug), slug, env: {} };
  }
  const field = (sub: string) => `${base}.${sub}`;
  if (!isRecord(entry))
    throw new UsageError(
      `${origin}: entry ${index + 1}: expected a slug string or a mapping with 'slug'`,
      SHAPE_HINT,
      { field: base },
    );
  const rawSlug = entry.slug;
  const label = typeof rawSlug === "string" ? rawSlug : "no slug";
  const where = `${origin}: entry ${index + 1} (${label})`;
  for (const key of Object.keys(entry)) {
    if (!ENTRY_KEYS.has(key))
      throw new UsageError(
        `${where}: unknown key '${key}'`,
        `allowed keys: ${[...ENTRY_KEYS].join(", ")}`,
        { field: field(key) },
      );
  }
  if (typeof rawSlug !== "string")
    throw new UsageError(`${where}: 'slug' is required and must be a string`, undefined, {
      field: field("slug"),
    });
  const slug = withWhere(where, field("slug"), () => parseSlug(rawSlug, slugOpts));
  let name = serviceNameFor(slug);
  if (entry.name !== undefined) {
    if (typeof entry.name !== "string" || !isDnsLabel(entry.name))
      throw new UsageError(
        `${where}: name ${JSON.stringify(entry.name)} is not a DNS label`,
        DNS_LABEL_HINT,
        { field: field("name") },
      );
    name = entry.name;
  }
  const env = withWhere("", field("env"), () => parseEnv(entry.env, where));
  const resources = withWhere("", field("resources"), () => parseResources(entry.resources, where));
  const spec: ServiceSpec = { name, slug, env, resources };
  const port = withWhere("", field("port"), () => parsePortValue(entry.port, where));
  if (port !== undefined) spec.port = port;
  if (entry.replicas !== undefined) {
    const value = entry.replicas;
    spec.replicas = withWhere("", field("replicas"), () => parseReplicas(value, where));
  }
  if (entry.placement !== undefined) {
    const value = entry.placement;
    spec.placement = withWhere("", field("placement"), () => parsePlacement(value, where));
  }
  if (isRecord(entry.entrypoint)) {
    const value = entry.entrypoint;
    spec.process = withWhere("", field("entrypoint"), () => parseProcessValue(value, where));
  } else if (entry.entrypoint !== undefined) {
    const value = entry.entrypoint;
    spec.entrypoint = withWhere("", field("entrypoint"), () => parseEntrypointValue(value, where));
  }
  if (entry.build !== undefined) {
    const value = entry.build;
    spec.build = withWhere("", field("build"), () => parseBuildValue(value, where));
  }
  if (entry.labels !== undefined) {
    const value = entry.labels;
    spec.labels = withWhere("", field("labels"), () => parseLabels(value, where));
  }
  if (entry.telemetry !== undefined) {
    const value = entry.telemetry;
    spec.telemetry = withWhere("", field("telemetry"), () => parseTelemetryValue(value, where));
  }
  return spec;
}

/** `entrypoint: {process: NAME}`: a process type of the repo's Procfile. */
export function parseProcessValue(value: Record<string, unknown>, where: string): string {
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== "process" || typeof value.process !== "string")
    throw new UsageError(
      `${where}: entrypoint as a mapping takes exactly one key, process (a Procfile process type)`,
      'e.g. entrypoint: {process: worker}, or entrypoint: "python -m app"',
    );
  if (!PROCESS_NAME_RE.test(value.process))
    throw new UsageError(
      `${where}: process ${JSON.stringify(value.process)} is not a Procfile process type name`,
      "process types are letters, digits, '_' and '-' (web, worker, ...)",
    );
  return value.process;
}

/** `build: dockerfile | default`. */
export function parseBuildValue(value: unknown, where: string): BuildMode {
  if (value === "dockerfile" || value === "default") return value;
  throw new UsageError(
    `${where}: build ${JSON.stringify(value)} is not "dockerfile" or "default"`,
    "build: dockerfile builds the repository's own Dockerfile and layers the runner on top",
  );
}

/** `telemetry: auto | off` (YAML's bare `off` is the string "off" in YAML 1.2, false in 1.1). */
export function parseTelemetryValue(value: unknown, where: string): TelemetryMode {
  if (value === "auto" || value === "off") return value;
  if (value === false) return "off";
  throw new UsageError(
    `${where}: telemetry ${JSON.stringify(value)} is not "auto" or "off"`,
    "telemetry: off builds the image without OpenTelemetry auto-instrumentation of main()",
  );
}

/** Label keys the images carry themselves; only io.iac.entrypoint may come from the user. */
const RESERVED_LABEL_RE = /^(io\.iac\.|org\.opencontainers\.image\.(source|revision)$)/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

/** `labels:`: image labels (strings); `io.iac.entrypoint` overrides detection. */
export function parseLabels(value: unknown, where: string): Record<string, string> {
  if (!isRecord(value)) throw new UsageError(`${where}: labels must be a mapping of key: value`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!LABEL_KEY_RE.test(key))
      throw new UsageError(`${where}: label key '${key}' is not a label name (e.g. com.acme.team)`);
    if (RESERVED_LABEL_RE.test(key) && key !== ENTRYPOINT_LABEL)
      throw new UsageError(
        `${where}: label '${key}' is set by iac itself`,
        `of the io.iac.* labels only ${ENTRYPOINT_LABEL} may be given (it overrides the detected entrypoint)`,
      );
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean")
      throw new UsageError(`${where}: label ${key} must be a string`);
    const text = String(v);
    if (text.includes("\0") || text.length > 4096)
      throw new UsageError(`${where}: label ${key} contains a NUL byte or is over 4096 characters`);
    out[key] = text;
  }
  if (out[ENTRYPOINT_LABEL] !== undefined) {
    const text = out[ENTRYPOINT_LABEL];
    try {
      labelArgv(text, `label ${ENTRYPOINT_LABEL}`);
    } catch (err) {
      throw new UsageError(`${where}: ${(err as IacError).message}`, (err as IacError).hint);
    }
  }
  return out;
}

/** `replicas:` (swarm target): tasks of the service, 1..100. */
function parseReplicas(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_REPLICAS)
    throw new UsageError(
      `${where}: replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${JSON.stringify(value)}`,
      "e.g. replicas: 2 (used by the swarm target; the local target runs one container)",
    );
  return value;
}

/** `placement:` (swarm target): a constraint string or a list of them. */
function parsePlacement(value: unknown, where: string): string[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || !list.every((c) => typeof c === "string"))
    throw new UsageError(`${where}: placement must be a constraint or a list of constraints`);
  for (const c of list as string[]) {
    if (!CONSTRAINT_RE.test(c.trim()))
      throw new UsageError(
        `${where}: placement constraint '${c}' is not of the form node.<attribute> ==|!= <value>`,
        'e.g. placement: ["node.labels.zone==a", "node.role!=manager"]',
      );
  }
  return (list as string[]).map((c) => c.trim());
}

/** Runs fn; an IacError from it becomes a UsageError prefixed with `where` and naming `field`. */
function withWhere<T>(where: string, field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof IacError)
      throw new UsageError(where ? `${where}: ${err.message}` : err.message, err.hint, {
        cause: err,
        field,
      });
    throw err;
  }
}

/**
 * Validates an in-memory repos document (a parsed file or an API request body).
 * `origin` names it in errors (a file path, "request body"); `baseDir` resolves file: paths.
 */
export function parseServiceList(
  doc: unknown,
  origin: string,
  baseDir: string,
  opts: ParseServiceListOptions = {},
): ServiceSpec[] {
  let list: unknown[];
  let key: string | undefined;
  if (Array.isArray(doc)) list = doc;
  else if (isRecord(doc)) {
    const keys = Object.keys(doc);
    const extra = keys.filter((k) => k !== "services" && k !== "slugs");
    if (extra.length > 0)
      throw new UsageError(`${origin}: unknown top-level key '${extra[0]}'`, SHAPE_HINT);
    if ("services" in doc && "slugs" in doc)
      throw new UsageError(`${origin}: use either 'services' or 'slugs', not both`, SHAPE_HINT);
    key = "services" in doc ? "services" : "slugs";
    const value = doc.services ?? doc.slugs;
    if (!Array.isArray(value))
      throw new UsageError(
        `${origin}: '${"services" in doc ? "services" : "slugs"}' must be a list`,
        SHAPE_HINT,
      );
    list = value;
    if ("slugs" in doc && !list.every((s) => typeof s === "string"))
      throw new UsageError(`${origin}: 'slugs' must be a list of slug strings`, SHAPE_HINT);
  } else if (doc === null || doc === undefined) {
    throw new UsageError(`${origin}: no services (the document is empty)`, SHAPE_HINT);
  } else {
    throw new UsageError(
      `${origin}: expected a list of slugs or a mapping with 'services'`,
      SHAPE_HINT,
    );
  }
  if (list.length === 0) throw new UsageError(`${origin}: the service list is empty`, SHAPE_HINT);
  const max = opts.maxServices ?? DEFAULT_MAX_SERVICES;
  if (list.length > max)
    throw new UsageError(
      `${origin}: ${list.length} services listed; at most ${max} are allowed in one project`,
      "split them into several projects (--project), or raise IAC_MAX_SERVICES",
    );
  const at = (i: number) => (key ? `${key}.${i}` : String(i));
  const specs = list.map((entry, i) => parseEntry(entry, i, origin, baseDir, opts, at(i)));
  const seen = new Map<string, number>();
  specs.forEach((spec, i) => {
    const j = seen.get(spec.name);
    if (j !== undefined)
      throw new UsageError(
        `${origin}: entries ${j} (${specs[j]!.slug.raw}) and ${i} (${spec.slug.raw}) both have the service name '${spec.name}'`,
        "give one of them a distinct `name:` (services: [{slug: ..., name: ...}])",
        { field: key === "services" ? `${at(i)}.name` : at(i) },
      );
    seen.set(spec.name, i);
  });
  return specs;
}

/** Parses YAML/JSON text; syntax errors name the origin, line and column. */
export function parseReposText(text: string, origin: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    const at = pos ? `:${pos.line}:${pos.col}` : "";
    const first = error.message.split("\n")[0];
    throw new UsageError(`${origin}${at}: invalid YAML/JSON: ${first}`, SHAPE_HINT);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // e.g. "Excessive alias count" (a billion-laughs document)
    throw new UsageError(`${origin}: invalid YAML/JSON: ${(err as Error).message}`, SHAPE_HINT);
  }
}

/** Reads and validates a repos file; file: slugs resolve against the file's folder. */
export async function loadReposFile(
  file: string,
  opts: ParseServiceListOptions = {},
): Promise<ServiceSpec[]> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === "ENOENT"
        ? `repos file ${file} not found`
        : `cannot read repos file ${file}: ${code ?? String(err)}`,
      "pass --file path/to/repos.yaml",
    );
  }
  return parseServiceList(parseReposText(text, file), file, path.dirname(abs), opts);
}
