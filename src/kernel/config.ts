// All settings, loaded and validated once. Nothing else in src/ reads process.env, .env or the
// bootstrap record: modules receive a Config (or the part of it they need) as an argument.
// Precedence, highest first: flags > environment > ./.env > bootstrap record > built-in defaults.
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { parseEnv } from "node:util";
import { z } from "zod";
import { DEFAULT_IMAGES } from "./contract.js";
import { type ErrorCode, IacError } from "./errors.js";
import { DNS_LABEL_RE, NETWORK_NAME_RE } from "./names.js";

/** Invalid settings (environment, flags): CLI exit code 2. */
export class ConfigError extends IacError {
  override readonly name = "ConfigError";
  override readonly code: ErrorCode = "config";
}

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, "expected host:port, e.g. 127.0.0.1:8080")
  .refine((v) => Number(v.split(":").pop()) <= 65535, "port must be <= 65535");

const httpUrl = z
  .string()
  .url("expected an absolute http(s) URL")
  .refine((v) => /^https?:\/\//.test(v), "expected an http:// or https:// URL")
  .transform((v) => v.replace(/\/+$/, ""));

/** http://localhost, 127.0.0.0/8 or [::1]. */
function isLoopbackUrl(v: string): boolean {
  try {
    const host = new URL(v).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
}

const boolFlag = z
  .enum(["1", "0", "true", "false", "yes", "no", ""])
  .transform((v) => v === "1" || v === "true" || v === "yes");

const positiveInt = z.coerce.number().int("expected an integer").positive("expected > 0");

/** A comma-separated setting as a list: items trimmed, empty ones dropped. */
function commaList(fallback: string) {
  return z
    .string()
    .default(fallback)
    .transform((v) =>
      v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );
}
/** The environment variables we read, with their defaults. Documented in .env.example. */
const envSchema = z.object({
  SUPABASE_URL: httpUrl
    .refine(
      (v) => /^https:\/\//.test(v) || isLoopbackUrl(v),
      "plain http:// is only allowed for a loopback host (tokens and the service key travel in it); use https://",
    )
    .optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
  GITHUB_API_URL: httpUrl.default("https://api.github.com"),
  GITHUB_SERVER_URL: httpUrl.default("https://github.com"),
  GITHUB_TOKEN: z.string().min(1).optional(),
  IAC_BASE_IMAGE: z.string().min(1).default(DEFAULT_IMAGES.base),
  IAC_ENVOY_IMAGE: z.string().min(1).default(DEFAULT_IMAGES.envoy),
  IAC_PULL_TIMEOUT_S: positiveInt.default(300),
  IAC_DEBIAN_MIRROR: httpUrl.default("http://deb.debian.org/debian"),
  IAC_SIDECAR: z.enum(["envoy", "none"]).default("envoy"),
  IAC_NETWORK: z
    .string()
    .regex(NETWORK_NAME_RE, "expected a Docker network name")
    .default("iacnet"),
  IAC_PROJECT: z
    .string()
    .regex(DNS_LABEL_RE, "expected a DNS label: lowercase letters, digits and '-', <= 63 chars")
    .default("iac"),
  IAC_HTTP_ADDR: hostPort.default("127.0.0.1:8080"),
  IAC_SOCKET_PATH: z.string().min(1).optional(),
  IAC_SOCKET_REQUIRE_AUTH: boolFlag.default(false),
  IAC_ADMIN_ROLES: commaList("iac-admin"),
  IAC_STATE_DIR: z.string().min(1).optional(),
  IAC_SECRETS_DIR: z.string().min(1).default("secrets"),
  IAC_CACHE_DIR: z.string().min(1).optional(),
  IAC_TERRAFORM_BIN: z.string().min(1).optional(),
  IAC_TF_CLI_CONFIG: z.string().min(1).optional(),
  IAC_PIP_INDEX_URL: httpUrl.optional(),
  IAC_MAX_SERVICES: positiveInt.max(10_000, "expected <= 10000").default(50),
  IAC_CONCURRENCY: positiveInt.max(32, "expected <= 32").default(4),
  IAC_HEALTH_TIMEOUT_S: positiveInt.default(90),
  IAC_HEALTH_STABLE_S: z.coerce
    .number("expected a number of seconds")
    .min(0, "expected >= 0")
    .max(600, "expected <= 600")
    .default(3),
  IAC_LOG_MAX_SIZE: z
    .string()
    .regex(/^[1-9]\d*[kmg]$/, "expected a size like 10m (k, m or g)")
    .default("10m"),
  IAC_LOG_MAX_FILE: positiveInt.max(100, "expected <= 100").default(3),
  IAC_CERT_VALIDITY_DAYS: positiveInt.max(825, "expected <= 825 days").default(30),
  IAC_FETCH_TIMEOUT_S: positiveInt.default(60),
  IAC_ALLOWED_GIT_HOSTS: commaList(""),
  IAC_MAX_ARCHIVE_BYTES: positiveInt.default(512 * 1024 * 1024),
  IAC_MAX_ARCHIVE_FILES: positiveInt.default(100_000),
  IAC_KEEP_RELEASES: positiveInt.default(5),
  IAC_RESTART_POLICY: z.enum(["never", "on-failure", "always"]).default("on-failure"),
  IAC_LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "silent"]).default("info"),
  DOCKER_HOST: z.string().min(1).optional(),
  /** Extra `ssh` options for an ssh:// DOCKER_HOST (iac's own calls and the provider's). */
  IAC_SSH_OPTS: z
    .string()
    .default("")
    .transform((v) => v.split(/\s+/).filter(Boolean)),
  IAC_TARGET: z.enum(["local", "swarm"]).default("local"),
  /** Swarm target: Docker endpoints of every node, for `docker save | docker load` of images. */
  IAC_SWARM_NODES: commaList("").pipe(
    z.array(
      z
        .string()
        .regex(/^(unix|tcp|ssh):\/\/\S+$/, "expected Docker endpoints (unix://, tcp://, ssh://)"),
    ),
  ),
  IAC_REGISTRY: z
    .string()
    .regex(/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)*$/, "expected a registry host[:port][/path]")
    .optional(),
  XDG_RUNTIME_DIR: z.string().min(1).optional(),
  XDG_CACHE_HOME: z.string().min(1).optional(),
  XDG_STATE_HOME: z.string().min(1).optional(),
  PATH: z.string().optional(),
});

export type Env = z.infer<typeof envSchema>;
type EnvKey = keyof typeof envSchema.shape;

/** Where a setting's value came from. */
export type SettingOrigin = "flag" | "env" | ".env" | "bootstrap" | "default";

/** What scripts/bootstrap.sh provisioned, in the cache dir; read as defaults. */
export const BOOTSTRAP_RECORD = "bootstrap.json";
/** The only settings a bootstrap record may supply. */
export const RECORDED_SETTINGS = ["IAC_BASE_IMAGE", "IAC_ENVOY_IMAGE"] as const;

/** Settings below the environment: a .env file and the bootstrap record. */
export interface ConfigLayers {
  dotenv?: Record<string, string | undefined>;
  bootstrap?: Partial<Record<(typeof RECORDED_SETTINGS)[number], string>>;
}

export interface Config {
  supabase: { url?: string; serviceRoleKey?: string; adminRoles: string[] };
  otlpEndpoint?: string;
  github: { apiUrl: string; serverUrl: string; token?: string };
  baseImage: string;
  envoyImage: string;
  /** How long one `docker pull` may take before it counts as failed. */
  pullTimeoutMs: number;
  /** Debian mirror for the local base image (debootstrap). */
  debianMirror: string;
  sidecar: "envoy" | "none";
  network: string;
  project: string;
  httpAddr: { host: string; port: number };
  socketPath: string;
  socketRequireAuth: boolean;
  /** Absolute paths. Per-project state lives in <stateDir>/<project>/, wherever iac runs. */
  stateDir: string;
  /** Where an earlier version kept state (./.iac of the working directory): migrated once. */
  legacyStateDir: string;
  secretsDir: string;
  cacheDir: string;
  terraform: { bin: string; cliConfig?: string };
  pipIndexUrl?: string;
  concurrency: number;
  /** Most services in one repos file / project. */
  maxServices: number;
  healthTimeoutMs: number;
  /** Seconds main() must run without a restart before its runner reports SERVING. */
  healthStableS: number;
  /** Docker json-file log rotation of every container. */
  logs: { maxSize: string; maxFile: number };
  certValidityDays: number;
  fetch: {
    timeoutMs: number;
    maxArchiveBytes: number;
    maxArchiveFiles: number;
    /** git+ hosts allowed although they are internal (loopback, private, link-local). */
    allowedGitHosts: string[];
  };
  restartPolicy: "never" | "on-failure" | "always";
  /** Releases whose images `iac prune` keeps. */
  keepReleases: number;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "silent";
  dockerHost?: string;
  /** Extra `ssh` arguments for an ssh:// dockerHost (e.g. `-F ~/.ssh/iac_config`), never a shell string. */
  sshOpts: string[];
  /** Where each setting came from (unset keys: "default"). */
  origins: Record<string, SettingOrigin>;
  /** local: one Docker host (containers + sidecars); swarm: docker_service per repo on a Swarm. */
  target: "local" | "swarm";
  /** Swarm target: the nodes' Docker endpoints images are loaded into (default: the manager only). */
  swarmNodes: string[];
  /** With a registry, swarm images are pushed there and pulled by the nodes instead of loaded. */
  registry?: string;
}

function writableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `terraform` from PATH, else the one scripts/bootstrap.sh builds into the cache. */
function defaultTerraform(pathVar: string | undefined, cacheDir: string): string {
  const onPath = (pathVar ?? "").split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, "terraform"), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  const built = path.join(cacheDir, "bin", "terraform");
  return !onPath && existsSync(built) ? built : "terraform";
}

/** /run/iac_wrapper.sock, or $XDG_RUNTIME_DIR/iac_wrapper.sock when /run is not writable. */
export function defaultSocketPath(xdgRuntimeDir?: string, runDir = "/run"): string {
  if (writableDir(runDir)) return path.join(runDir, "iac_wrapper.sock");
  if (xdgRuntimeDir) return path.join(xdgRuntimeDir, "iac_wrapper.sock");
  return path.join(homedir(), ".iac_wrapper.sock");
}

function formatIssues(
  error: z.ZodError,
  source: Record<string, string | undefined>,
  origins: Record<string, SettingOrigin>,
): string {
  return error.issues
    .map((issue) => {
      const key = String(issue.path[0] ?? "?");
      const value = key.includes("KEY") || key.includes("TOKEN") ? "<redacted>" : source[key];
      const from =
        origins[key] === ".env" || origins[key] === "bootstrap"
          ? ` (from ${origins[key] === ".env" ? ".env" : "the bootstrap record"})`
          : "";
      return `${key}=${JSON.stringify(value)}${from}: ${issue.message}`;
    })
    .join("; ");
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

function resolveCacheDir(cacheDir: string | undefined, xdgCache: string | undefined, cwd: string) {
  return path.resolve(
    cwd,
    cacheDir ?? path.join(xdgCache ?? path.join(homedir(), ".cache"), "iac-wrapper"),
  );
}

/**
 * Loads settings: flags (overrides) win over env, env over the layers (.env, then the
 * bootstrap record), those over defaults. An empty value counts as unset.
 * Throws ConfigError naming the variable and what is allowed.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Record<keyof Env, string | undefined>> = {},
  cwd: string = process.cwd(),
  layers: ConfigLayers = {},
): Config {
  const merged: Record<string, string | undefined> = {};
  const origins: Record<string, SettingOrigin> = {};
  const recorded = layers.bootstrap as Record<string, string | undefined> | undefined;
  for (const key of Object.keys(envSchema.shape) as EnvKey[]) {
    const candidates: [SettingOrigin, string | undefined][] = [
      ["flag", overrides[key]],
      ["env", env[key]],
      [".env", layers.dotenv?.[key]],
      [
        "bootstrap",
        (RECORDED_SETTINGS as readonly string[]).includes(key) ? recorded?.[key] : undefined,
      ],
    ];
    const hit = candidates.find(([, v]) => nonEmpty(v) !== undefined);
    merged[key] = hit?.[1];
    origins[key] = hit?.[0] ?? "default";
  }
  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(`invalid setting: ${formatIssues(parsed.error, merged, origins)}`);
  }
  const e = parsed.data;
  const [host, port] = [
    e.IAC_HTTP_ADDR.slice(0, e.IAC_HTTP_ADDR.lastIndexOf(":")),
    Number(e.IAC_HTTP_ADDR.slice(e.IAC_HTTP_ADDR.lastIndexOf(":") + 1)),
  ];
  const cacheDir = resolveCacheDir(e.IAC_CACHE_DIR, e.XDG_CACHE_HOME, cwd);
  const bootstrapTfrc = path.join(cacheDir, "terraform", "terraformrc");
  return {
    supabase: {
      url: e.SUPABASE_URL,
      serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY,
      adminRoles: e.IAC_ADMIN_ROLES,
    },
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    github: { apiUrl: e.GITHUB_API_URL, serverUrl: e.GITHUB_SERVER_URL, token: e.GITHUB_TOKEN },
    baseImage: e.IAC_BASE_IMAGE,
    envoyImage: e.IAC_ENVOY_IMAGE,
    pullTimeoutMs: e.IAC_PULL_TIMEOUT_S * 1000,
    debianMirror: e.IAC_DEBIAN_MIRROR,
    sidecar: e.IAC_SIDECAR,
    network: e.IAC_NETWORK,
    project: e.IAC_PROJECT,
    httpAddr: { host: host ?? "127.0.0.1", port: port ?? 8080 },
    socketPath: e.IAC_SOCKET_PATH ?? defaultSocketPath(e.XDG_RUNTIME_DIR),
    socketRequireAuth: e.IAC_SOCKET_REQUIRE_AUTH,
    stateDir: path.resolve(
      cwd,
      e.IAC_STATE_DIR ??
        path.join(e.XDG_STATE_HOME ?? path.join(homedir(), ".local", "state"), "iac-wrapper"),
    ),
    legacyStateDir: path.resolve(cwd, ".iac"),
    secretsDir: path.resolve(cwd, e.IAC_SECRETS_DIR),
    cacheDir,
    terraform: {
      bin: e.IAC_TERRAFORM_BIN ?? defaultTerraform(e.PATH, cacheDir),
      cliConfig: e.IAC_TF_CLI_CONFIG ?? (existsSync(bootstrapTfrc) ? bootstrapTfrc : undefined),
    },
    pipIndexUrl: e.IAC_PIP_INDEX_URL,
    concurrency: e.IAC_CONCURRENCY,
    maxServices: e.IAC_MAX_SERVICES,
    healthTimeoutMs: e.IAC_HEALTH_TIMEOUT_S * 1000,
    healthStableS: e.IAC_HEALTH_STABLE_S,
    logs: { maxSize: e.IAC_LOG_MAX_SIZE, maxFile: e.IAC_LOG_MAX_FILE },
    certValidityDays: e.IAC_CERT_VALIDITY_DAYS,
    fetch: {
      timeoutMs: e.IAC_FETCH_TIMEOUT_S * 1000,
      maxArchiveBytes: e.IAC_MAX_ARCHIVE_BYTES,
      maxArchiveFiles: e.IAC_MAX_ARCHIVE_FILES,
      allowedGitHosts: e.IAC_ALLOWED_GIT_HOSTS,
    },
    restartPolicy: e.IAC_RESTART_POLICY,
    keepReleases: e.IAC_KEEP_RELEASES,
    logLevel: e.IAC_LOG_LEVEL,
    dockerHost: e.DOCKER_HOST,
    sshOpts: e.IAC_SSH_OPTS,
    origins,
    target: e.IAC_TARGET,
    swarmNodes: e.IAC_SWARM_NODES,
    registry: e.IAC_REGISTRY,
  };
}

/** A .env file's settings ({} when there is none). */
export function readDotEnv(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseEnv(text) as Record<string, string>;
}

export function bootstrapRecordPath(cacheDir: string): string {
  return path.join(cacheDir, BOOTSTRAP_RECORD);
}

/** The settings scripts/bootstrap.sh recorded ({} when it never ran). */
export function readBootstrapRecord(cacheDir: string): ConfigLayers["bootstrap"] {
  const file = bootstrapRecordPath(cacheDir);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(
      `the bootstrap record ${file} is unreadable: ${(err as Error).message}; ` +
        "re-run `make bootstrap` (or delete the file)",
    );
  }
  const settings = (doc as { settings?: unknown })?.settings;
  const out: Record<string, string> = {};
  if (settings && typeof settings === "object") {
    for (const key of RECORDED_SETTINGS) {
      const v = (settings as Record<string, unknown>)[key];
      if (typeof v === "string" && v) out[key] = v;
    }
  }
  return out;
}

/**
 * The CLI's settings: flags, then this process's environment, then ./.env, then what the
 * bootstrap recorded (skipped with bootstrapRecord: false — bootstrap itself starts from the
 * configured images, not from what it chose last time), then defaults.
 */
export function loadSystemConfig(
  overrides: Partial<Record<keyof Env, string | undefined>> = {},
  opts: { cwd?: string; bootstrapRecord?: boolean } = {},
): Config {
  const cwd = opts.cwd ?? process.cwd();
  const dotenv = readDotEnv(path.join(cwd, ".env"));
  const pick = (key: EnvKey) =>
    nonEmpty(overrides[key]) ?? nonEmpty(process.env[key]) ?? nonEmpty(dotenv[key]);
  const cacheDir = resolveCacheDir(pick("IAC_CACHE_DIR"), pick("XDG_CACHE_HOME"), cwd);
  const bootstrap = opts.bootstrapRecord === false ? {} : readBootstrapRecord(cacheDir);
  return loadConfig(process.env, overrides, cwd, { dotenv, bootstrap });
}

/** Variables handed through to child processes (terraform, git) without leaking secrets. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  // SSH_AUTH_SOCK: an ssh:// DOCKER_HOST authenticates through the user's agent.
  const keep = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST", "USER", "SSH_AUTH_SOCK"];
  const out: Record<string, string> = {};
  for (const key of keep) {
    const value = process.env[key];
    if (value !== undefined) out[key] = value;
  }
  return { ...out, ...extra };
}

/**
 * The whole environment plus `extra`, for tools that read their own settings from it (the
 * docker CLI: DOCKER_CONFIG, proxies; pip: PIP_*, pip.conf). Never for terraform or git.
 */
export function inheritedEnv(extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  return { ...out, ...extra };
}

/** NO_COLOR (https://no-color.org): colour is off when it is set to anything non-empty. */
export function noColorEnv(
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  return env.NO_COLOR;
}
