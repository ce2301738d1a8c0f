// All settings, loaded and validated once. Nothing else in src/ reads process.env:
// modules receive a Config (or the part of it they need) as an argument.
import { accessSync, constants, existsSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { z } from "zod";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, "expected host:port, e.g. 127.0.0.1:8080")
  .refine((v) => Number(v.split(":").pop()) <= 65535, "port must be <= 65535");

const httpUrl = z
  .string()
  .url("expected an absolute http(s) URL")
  .refine((v) => /^https?:\/\//.test(v), "expected an http:// or https:// URL")
  .transform((v) => v.replace(/\/+$/, ""));

const boolFlag = z
  .enum(["1", "0", "true", "false", "yes", "no", ""])
  .transform((v) => v === "1" || v === "true" || v === "yes");

const positiveInt = z.coerce.number().int("expected an integer").positive("expected > 0");

/** The environment variables we read, with their defaults. Documented in .env.example. */
const envSchema = z.object({
  SUPABASE_URL: httpUrl.optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
  GITHUB_API_URL: httpUrl.default("https://api.github.com"),
  GITHUB_SERVER_URL: httpUrl.default("https://github.com"),
  GITHUB_TOKEN: z.string().min(1).optional(),
  IAC_BASE_IMAGE: z.string().min(1).default("python:3.11-slim"),
  IAC_ENVOY_IMAGE: z.string().min(1).default("envoyproxy/envoy:v1.40.0"),
  IAC_SIDECAR: z.enum(["envoy", "none"]).default("envoy"),
  IAC_NETWORK: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, "expected a Docker network name")
    .default("iacnet"),
  IAC_PROJECT: z
    .string()
    .regex(dnsLabel, "expected a DNS label: lowercase letters, digits and '-', <= 63 chars")
    .default("iac"),
  IAC_HTTP_ADDR: hostPort.default("127.0.0.1:8080"),
  IAC_SOCKET_PATH: z.string().min(1).optional(),
  IAC_SOCKET_REQUIRE_AUTH: boolFlag.default(false),
  IAC_ADMIN_ROLES: z
    .string()
    .default("iac-admin")
    .transform((v) =>
      v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  IAC_STATE_DIR: z.string().min(1).default(".iac"),
  IAC_SECRETS_DIR: z.string().min(1).default("secrets"),
  IAC_CACHE_DIR: z.string().min(1).optional(),
  IAC_TERRAFORM_BIN: z.string().min(1).optional(),
  IAC_TF_CLI_CONFIG: z.string().min(1).optional(),
  IAC_PIP_INDEX_URL: httpUrl.optional(),
  IAC_CONCURRENCY: positiveInt.max(32, "expected <= 32").default(4),
  IAC_HEALTH_TIMEOUT_S: positiveInt.default(90),
  IAC_CERT_VALIDITY_DAYS: positiveInt.max(825, "expected <= 825 days").default(30),
  IAC_FETCH_TIMEOUT_S: positiveInt.default(60),
  IAC_MAX_ARCHIVE_BYTES: positiveInt.default(512 * 1024 * 1024),
  IAC_MAX_ARCHIVE_FILES: positiveInt.default(100_000),
  IAC_RESTART_POLICY: z.enum(["never", "on-failure", "always"]).default("on-failure"),
  IAC_LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "silent"]).default("info"),
  DOCKER_HOST: z.string().min(1).optional(),
  XDG_RUNTIME_DIR: z.string().min(1).optional(),
  XDG_CACHE_HOME: z.string().min(1).optional(),
  PATH: z.string().optional(),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  supabase: { url?: string; serviceRoleKey?: string; adminRoles: string[] };
  otlpEndpoint?: string;
  github: { apiUrl: string; serverUrl: string; token?: string };
  baseImage: string;
  envoyImage: string;
  sidecar: "envoy" | "none";
  network: string;
  project: string;
  httpAddr: { host: string; port: number };
  socketPath: string;
  socketRequireAuth: boolean;
  /** Absolute paths. */
  stateDir: string;
  secretsDir: string;
  cacheDir: string;
  terraform: { bin: string; cliConfig?: string };
  pipIndexUrl?: string;
  concurrency: number;
  healthTimeoutMs: number;
  certValidityDays: number;
  fetch: { timeoutMs: number; maxArchiveBytes: number; maxArchiveFiles: number };
  restartPolicy: "never" | "on-failure" | "always";
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "silent";
  dockerHost?: string;
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

function formatIssues(error: z.ZodError, source: Record<string, string | undefined>): string {
  return error.issues
    .map((issue) => {
      const key = String(issue.path[0] ?? "?");
      const value = key.includes("KEY") || key.includes("TOKEN") ? "<redacted>" : source[key];
      return `${key}=${JSON.stringify(value)}: ${issue.message}`;
    })
    .join("; ");
}

/**
 * Loads settings: flags (overrides) win over env, env wins over defaults.
 * Throws ConfigError naming the variable and what is allowed.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Record<keyof Env, string | undefined>> = {},
  cwd: string = process.cwd(),
): Config {
  const merged: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = overrides[key as keyof Env] ?? env[key];
    merged[key] = value === "" && key !== "IAC_SOCKET_REQUIRE_AUTH" ? undefined : value;
  }
  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(`invalid setting: ${formatIssues(parsed.error, merged)}`);
  }
  const e = parsed.data;
  const [host, port] = [
    e.IAC_HTTP_ADDR.slice(0, e.IAC_HTTP_ADDR.lastIndexOf(":")),
    Number(e.IAC_HTTP_ADDR.slice(e.IAC_HTTP_ADDR.lastIndexOf(":") + 1)),
  ];
  const cacheDir = path.resolve(
    cwd,
    e.IAC_CACHE_DIR ?? path.join(e.XDG_CACHE_HOME ?? path.join(homedir(), ".cache"), "iac-wrapper"),
  );
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
    sidecar: e.IAC_SIDECAR,
    network: e.IAC_NETWORK,
    project: e.IAC_PROJECT,
    httpAddr: { host: host ?? "127.0.0.1", port: port ?? 8080 },
    socketPath: e.IAC_SOCKET_PATH ?? defaultSocketPath(e.XDG_RUNTIME_DIR),
    socketRequireAuth: e.IAC_SOCKET_REQUIRE_AUTH,
    stateDir: path.resolve(cwd, e.IAC_STATE_DIR),
    secretsDir: path.resolve(cwd, e.IAC_SECRETS_DIR),
    cacheDir,
    terraform: {
      bin: e.IAC_TERRAFORM_BIN ?? defaultTerraform(e.PATH, cacheDir),
      cliConfig: e.IAC_TF_CLI_CONFIG ?? (existsSync(bootstrapTfrc) ? bootstrapTfrc : undefined),
    },
    pipIndexUrl: e.IAC_PIP_INDEX_URL,
    concurrency: e.IAC_CONCURRENCY,
    healthTimeoutMs: e.IAC_HEALTH_TIMEOUT_S * 1000,
    certValidityDays: e.IAC_CERT_VALIDITY_DAYS,
    fetch: {
      timeoutMs: e.IAC_FETCH_TIMEOUT_S * 1000,
      maxArchiveBytes: e.IAC_MAX_ARCHIVE_BYTES,
      maxArchiveFiles: e.IAC_MAX_ARCHIVE_FILES,
    },
    restartPolicy: e.IAC_RESTART_POLICY,
    logLevel: e.IAC_LOG_LEVEL,
    dockerHost: e.DOCKER_HOST,
  };
}

/** Variables handed through to child processes (terraform, git) without leaking secrets. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const keep = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST", "USER"];
  const out: Record<string, string> = {};
  for (const key of keep) {
    const value = process.env[key];
    if (value !== undefined) out[key] = value;
  }
  return { ...out, ...extra };
}
