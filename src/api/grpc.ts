// The proto's iac.controlplane.v1.ControlPlane service (Deploy, HealthCheck) on a Unix
// socket next to the HTTP one. Same trust model as the HTTP socket (file mode 0600; a bearer
// in the `authorization` metadata when IAC_SOCKET_REQUIRE_AUTH=1), same deployment registry
// (so a gRPC deploy shows up under GET /deployments and answers 409-style ABORTED when busy).
import { chmodSync } from "node:fs";
import {
  Server,
  ServerCredentials,
  status,
  type ServiceError,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { catalogueEntry, formatError } from "../kernel/errors.js";
import {
  ControlPlaneService,
  type ControlPlaneServer,
  type DeployResult,
  type HealthStatus,
  HealthStatus_Status,
} from "../gen/controlplane.js";
import type { AuthOutcome } from "./auth.js";
import type { Operation } from "./deployments.js";
import type { ControlPlaneHealth, DeployReport } from "./pipeline.js";
import { prepareSocketPath } from "./socket.js";

export interface GrpcHandlers {
  /** undefined = trusted (socket), else the bearer must pass. */
  authenticate?: (authorization: string | undefined) => Promise<AuthOutcome>;
  beginDeploy(body: unknown): Operation;
  controlPlaneHealth(): Promise<ControlPlaneHealth>;
}

function grpcError(code: status, details: string): Partial<ServiceError> {
  return { code, details, message: details };
}

function toGrpcError(err: unknown): Partial<ServiceError> {
  return grpcError(catalogueEntry(err).grpcStatus, formatError(err, { oneLine: true }));
}

function authError(o: Extract<AuthOutcome, { ok: false }>): Partial<ServiceError> {
  const code =
    o.status === 401
      ? status.UNAUTHENTICATED
      : o.status === 403
        ? status.PERMISSION_DENIED
        : o.status === 429
          ? status.RESOURCE_EXHAUSTED
          : status.UNAVAILABLE;
  return grpcError(code, o.message);
}

export function toDeployResult(report: DeployReport): DeployResult {
  return {
    project: report.project,
    services: report.services.map((s) => ({
      name: s.name,
      slug: s.slug,
      commit: s.commit ?? "",
      status: s.status,
      image: s.image ?? "",
      port: s.port ?? 0,
      error: s.error ?? "",
    })),
  };
}

export function controlPlaneImpl(h: GrpcHandlers): ControlPlaneServer {
  const guard = async <T>(
    call: { metadata: { get(key: string): Array<string | Buffer> } },
    cb: sendUnaryData<T>,
  ): Promise<boolean> => {
    if (!h.authenticate) return true;
    const value = call.metadata.get("authorization")[0];
    const outcome = await h.authenticate(typeof value === "string" ? value : value?.toString());
    if (outcome.ok) return true;
    cb(authError(outcome), null);
    return false;
  };
  return {
    deploy: (call, cb) => {
      void (async () => {
        if (!(await guard(call, cb))) return;
        let op: Operation;
        try {
          const body: Record<string, unknown> = { slugs: call.request.slugs };
          if (call.request.project) body.project = call.request.project;
          op = h.beginDeploy(body);
        } catch (err) {
          return cb(toGrpcError(err), null);
        }
        // A client that goes away does not cancel the deploy (follow it: GET /deployments).
        await op.done;
        if (op.result) return cb(null, toDeployResult(op.result as DeployReport));
        cb(
          grpcError(
            status.INTERNAL,
            `deployment ${op.id} failed: ${op.error?.message ?? op.status}`,
          ),
          null,
        );
      })();
    },
    healthCheck: (call, cb) => {
      void (async () => {
        if (!(await guard(call, cb))) return;
        const health = await h.controlPlaneHealth();
        const reply: HealthStatus = {
          status: health.ok ? HealthStatus_Status.SERVING : HealthStatus_Status.NOT_SERVING,
          service: "iac-control-plane",
          phase: "running",
          exitCode: undefined,
          restarts: 0,
          uptimeSeconds: process.uptime(),
          message: Object.entries(health.checks)
            .map(([k, c]) => `${k}: ${c.ok ? "ok" : "FAIL"} (${c.detail})`)
            .join("; "),
          commit: "",
          argv: [],
          pid: process.pid,
        };
        cb(null, reply);
      })();
    },
  };
}

/** Binds the ControlPlane service on `socketPath` (mode 0600); returns a stop function. */
export async function startGrpc(socketPath: string, h: GrpcHandlers): Promise<() => Promise<void>> {
  await prepareSocketPath(socketPath);
  const server = new Server();
  server.addService(ControlPlaneService, controlPlaneImpl(h));
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  } finally {
    process.umask(old);
  }
  chmodSync(socketPath, 0o600);
  return () =>
    new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2_000).unref();
    });
}

/** `/run/iac_wrapper.sock` -> `/run/iac_wrapper.grpc.sock`. */
export function grpcSocketPathFor(httpSocketPath: string): string {
  return httpSocketPath.replace(/(\.sock)?$/, ".grpc.sock");
}
