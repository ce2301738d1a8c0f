// The facts the control plane, the Terraform module (infra/), the templates and the runner
// must agree on. Each is written here once for TypeScript; test/unit/contract.test.ts reads
// infra/*.tf, infra/templates/* and the runner's defaults and fails when they drift.

/** Ports inside a service's network namespace. */
export const PORTS = {
  /** The app's runner: plaintext gRPC on 127.0.0.1 behind the sidecar. */
  app: 50051,
  /** Sidecar inbound, mTLS: the only way in (the runner itself with IAC_SIDECAR=none). */
  inbound: 15000,
  /** Sidecar outbound for the app, loopback: `:authority` = peer name. */
  outbound: 15001,
  /** Sidecar metrics, loopback. */
  metrics: 9901,
} as const;

/** Ports an app may not declare as its peer port (`port:`): the sidecar's and the runner's. */
export const RESERVED_PORTS: readonly number[] = [
  PORTS.inbound,
  PORTS.outbound,
  PORTS.metrics,
  PORTS.app,
];

/** Users inside the containers; certificates are chowned to the one that reads them. */
export const UIDS = {
  /** The official Envoy image's non-root user (uid:gid 101:101). */
  envoy: 101,
  /** The app image's user (infra/templates/app.Dockerfile.tmpl). */
  app: 10001,
} as const;

/** Paths inside the containers. */
export const CONTAINER_PATHS = {
  /** ca.pem, cert.pem, key.pem (bind-mounted read-only; IAC_TLS_DIR of the runner). */
  certDir: "/etc/iac/certs",
  envoyConfig: "/etc/envoy/envoy.yaml",
  envoyAdminSocket: "/tmp/envoy-admin.sock",
  runnerPython: "/opt/iac-runner/bin/python",
} as const;

/** Default images (IAC_ENVOY_IMAGE, IAC_BASE_IMAGE). */
export const DEFAULT_IMAGES = {
  /** A pinned v1.40 release (v1.40.0, 2026-10-01). */
  envoy: "envoyproxy/envoy:v1.40.0",
  base: "python:3.11-slim",
} as const;
