// Per-service Envoy sidecar config (v3 bootstrap, static resources) rendered from
// infra/templates/envoy.yaml.tmpl. The sidecar shares the app container's network namespace:
// inbound mTLS on 15000, routed by path and caller identity (RBAC): the runtime API and gRPC
// health -> the runner on 127.0.0.1:50051 for the control plane only; everything else -> the
// app's declared port on 127.0.0.1 for the stack's services only. Outbound 127.0.0.1:15001 ->
// the 15000 of peers that declare a port.
import { readFileSync } from "node:fs";
import { chmod } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { writeFileAtomic } from "../platform/fs.js";
import {
  CONTAINER_PATHS,
  DEFAULT_IMAGES,
  PORTS,
  RESERVED_PORTS,
  UIDS,
} from "../kernel/contract.js";
import {
  CONTROL_PLANE_SPIFFE_ID,
  isDnsLabel,
  isNetworkName,
  serviceSpiffeId,
} from "../kernel/names.js";
import { UsageError } from "../kernel/errors.js";

// Ports, uids, paths and the default image come from kernel/contract.ts (re-exported here
// under the sidecar's names).
export const ENVOY_PORTS = {
  inbound: PORTS.inbound,
  outbound: PORTS.outbound,
  metrics: PORTS.metrics,
} as const;
export const APP_PORT = PORTS.app;
export const DEFAULT_ENVOY_IMAGE = DEFAULT_IMAGES.envoy;
export const ENVOY_UID = UIDS.envoy;
export const ENVOY_CONFIG_PATH = CONTAINER_PATHS.envoyConfig;
export const ENVOY_CERT_DIR = CONTAINER_PATHS.certDir;
export const ENVOY_ADMIN_SOCKET = CONTAINER_PATHS.envoyAdminSocket;
/** gRPC path prefixes served by the runner; only the control plane may call them. */
export const RUNNER_PATH_PREFIXES = ["/iac.controlplane.v1.Runtime/", "/grpc.health.v1.Health/"];

export const TEMPLATE_FILE = fileURLToPath(
  new URL("../../infra/templates/envoy.yaml.tmpl", import.meta.url),
);

export interface EnvoyLimits {
  /** Overload manager: global cap on downstream connections (all listeners but metrics). */
  maxDownstreamConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, downstream and upstream. */
  maxConcurrentStreams: number;
  /** Per-connection read/write buffer limit (listeners and clusters). */
  bufferLimitBytes: number;
  /** A stream with no activity for this long is reset (StreamLogs --follow included). */
  streamIdleTimeoutSeconds: number;
}

export const DEFAULT_ENVOY_LIMITS: EnvoyLimits = {
  maxDownstreamConnections: 1024,
  maxConcurrentStreams: 100,
  bufferLimitBytes: 32 * 1024,
  streamIdleTimeoutSeconds: 3600,
};

/** Another service of the stack; `port` set = it serves peers (an outbound destination). */
export interface EnvoyPeer {
  name: string;
  port?: number;
}

export interface EnvoyConfigOptions {
  project: string;
  service: string;
  network: string;
  /** The port the app serves its peers on (127.0.0.1); none = peers cannot call it. */
  port?: number;
  /** The other services of the stack (the service itself is ignored if listed). */
  peers: EnvoyPeer[];
  /** Cert folder inside the container (cert.pem, key.pem, ca.pem). */
  certDir?: string;
  adminSocket?: string;
  limits?: Partial<EnvoyLimits>;
}

export { RESERVED_PORTS };

function reservedPort(port: number): boolean {
  return RESERVED_PORTS.includes(port);
}
const absPath = /^\/[A-Za-z0-9._/-]{1,200}$/;

type Scalar = string | number;
interface Context {
  [key: string]: Scalar | Context[];
}

let templateCache: string | undefined;

function template(): string {
  templateCache ??= readFileSync(TEMPLATE_FILE, "utf8");
  return templateCache;
}

/**
 * A deliberately tiny renderer: `{{name}}` substitutes a value; a line `{{#list}}` up to a
 * line `{{/list}}` is repeated for every item of the list (items see the outer values too).
 * An unknown name is an error, so a typo in the template cannot render silently.
 */
export function renderTemplate(text: string, ctx: Context): string {
  const block = /^[ \t]*\{\{#(\w+)\}\}[ \t]*\r?\n([\s\S]*?)^[ \t]*\{\{\/\1\}\}[ \t]*(?:\r?\n|$)/m;
  let out = "";
  let rest = text;
  for (let m = block.exec(rest); m; m = block.exec(rest)) {
    out += substitute(rest.slice(0, m.index), ctx);
    const items = ctx[m[1]!];
    if (!Array.isArray(items)) throw new Error(`template block {{#${m[1]}}}: no such list`);
    for (const item of items) out += renderTemplate(m[2]!, { ...ctx, ...item });
    rest = rest.slice(m.index + m[0].length);
  }
  return out + substitute(rest, ctx);
}

function substitute(text: string, ctx: Context): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = ctx[name];
    if (typeof value === "string" || typeof value === "number") return String(value);
    throw new Error(`template value {{${name}}} is not defined`);
  });
}

function check(ok: boolean, what: string, value: unknown, hint?: string): void {
  if (!ok) throw new UsageError(`envoy config: invalid ${what} ${JSON.stringify(value)}`, hint);
}

/** The :authority values the outbound listener maps to a peer. */
export function peerDomains(peer: string, network: string): string[] {
  const hosts = [peer, `${peer}.${network}`];
  const ports = ["", `:${ENVOY_PORTS.inbound}`, `:${ENVOY_PORTS.outbound}`, `:${APP_PORT}`];
  return hosts.flatMap((h) => ports.map((p) => h + p));
}

/** SPIFFE ids of the stack's services (the service itself included), sorted. */
export function peerCallers(project: string, service: string, peers: string[]): string[] {
  return [...new Set([service, ...peers])].sort().map((s) => serviceSpiffeId(project, s));
}

/**
 * SPIFFE ids the inbound listener's TLS accepts: the control plane, plus the stack's services
 * when the app serves peers. What each may call is decided by the RBAC filter.
 */
export function allowedCallers(
  project: string,
  service: string,
  peers: string[],
  servesPeers: boolean,
): string[] {
  return [CONTROL_PLANE_SPIFFE_ID, ...(servesPeers ? peerCallers(project, service, peers) : [])];
}

/** The sidecar config (YAML text) for one service. */
export function renderEnvoyConfig(opts: EnvoyConfigOptions): string {
  const { project, service, network } = opts;
  const certDir = (opts.certDir ?? ENVOY_CERT_DIR).replace(/\/+$/, "");
  const adminSocket = opts.adminSocket ?? ENVOY_ADMIN_SOCKET;
  const limits = { ...DEFAULT_ENVOY_LIMITS, ...opts.limits };
  check(isDnsLabel(project), "project", project, "use a DNS label");
  check(isDnsLabel(service), "service", service, "use a DNS label");
  check(isNetworkName(network), "network", network);
  check(absPath.test(certDir), "certDir", certDir, "an absolute path of [A-Za-z0-9._/-]");
  check(absPath.test(adminSocket) && adminSocket.length <= 100, "adminSocket", adminSocket);
  const validPort = (p: number | undefined) =>
    p === undefined || (Number.isInteger(p) && p >= 1 && p <= 65535 && !reservedPort(p));
  check(validPort(opts.port), "port", opts.port, "1-65535, not 15000, 15001, 9901 or 50051");
  for (const peer of opts.peers) {
    check(isDnsLabel(peer.name), "peer", peer.name, "use a DNS label");
    check(validPort(peer.port), `port of peer ${peer.name}`, peer.port);
  }
  for (const [name, value] of Object.entries(limits)) {
    check(Number.isInteger(value) && value > 0 && value <= 2 ** 31 - 1, `limits.${name}`, value);
  }
  const others = opts.peers.filter((p) => p.name !== service);
  const peers = [...new Set(others.map((p) => p.name))].sort();
  // Outbound destinations: peers that serve peers (a declared port).
  const reachable = [...new Set(others.filter((p) => p.port !== undefined).map((p) => p.name))];
  const servesPeers = opts.port !== undefined;
  const [runtimePrefix, healthPrefix] = RUNNER_PATH_PREFIXES as [string, string];
  const ctx: Context = {
    project,
    service,
    network,
    certDir,
    adminSocket,
    inboundPort: ENVOY_PORTS.inbound,
    outboundPort: ENVOY_PORTS.outbound,
    metricsPort: ENVOY_PORTS.metrics,
    runnerPort: APP_PORT,
    runtimePrefix,
    healthPrefix,
    controlPlaneId: CONTROL_PLANE_SPIFFE_ID,
    maxDownstreamConnections: limits.maxDownstreamConnections,
    maxConcurrentStreams: limits.maxConcurrentStreams,
    bufferLimitBytes: limits.bufferLimitBytes,
    streamIdleTimeout: `${limits.streamIdleTimeoutSeconds}s`,
    allowed: allowedCallers(project, service, peers, servesPeers).map((spiffeId) => ({
      spiffeId,
    })),
    // Zero or one item: the blocks for an app that serves peers, or for one that does not.
    app: servesPeers
      ? [
          {
            appPort: opts.port!,
            callers: peerCallers(project, service, peers).map((spiffeId) => ({ spiffeId })),
          },
        ]
      : [],
    noApp: servesPeers ? [] : [{}],
    peers: reachable.sort().map((peer) => ({
      peer,
      peerSpiffeId: serviceSpiffeId(project, peer),
      domains: peerDomains(peer, network).map((domain) => ({ domain })),
    })),
  };
  const text = renderTemplate(template(), ctx);
  parseYaml(text); // a template edit that breaks YAML fails here, not in the container
  return text;
}

/** Path of a service's rendered config: <stateDir>/<project>/envoy/<service>.yaml. */
export function envoyConfigPath(stateDir: string, project: string, service: string): string {
  return path.join(stateDir, project, "envoy", `${service}.yaml`);
}

/** Renders and writes (atomically, 0644: the sidecar's non-root user reads it) the config. */
export async function writeEnvoyConfig(
  stateDir: string,
  opts: EnvoyConfigOptions,
): Promise<string> {
  const file = envoyConfigPath(stateDir, opts.project, opts.service);
  await writeFileAtomic(file, renderEnvoyConfig(opts), 0o644);
  await chmod(file, 0o644); // whatever the umask: uid 101 reads it through a bind mount
  return file;
}
