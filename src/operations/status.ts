// `iac health` / GET /services: each deployed service's runner status over gRPC + mTLS, and
// the control plane's own health (Docker engine, terraform).
import type { Config } from "../kernel/config.js";
import { healthCheck, runtimeClient } from "../runtime/client.js";
import { HealthStatus_Status, type HealthStatus } from "../gen/controlplane.js";
import { dockerClient } from "../platform/docker.js";
import { errorMessage } from "../kernel/errors.js";
import * as tf from "../stack/terraform.js";
import { deployedServices, readOnlyControlPlaneCerts } from "./project.js";
import { serviceSpiffeId } from "../mesh/pki.js";
import { swarmHealth } from "./swarm-status.js";

export interface ServiceHealth {
  name: string;
  status: "SERVING" | "NOT_SERVING" | "UNKNOWN" | "UNREACHABLE";
  phase?: string;
  exitCode?: number;
  restarts?: number;
  uptimeSeconds?: number;
  message?: string;
  port?: number;
  /** Swarm target: one row per task. */
  node?: string;
  replica?: number;
  task?: string;
  taskState?: string;
}
export function statusName(s: HealthStatus): "SERVING" | "NOT_SERVING" | "UNKNOWN" {
  if (s.status === HealthStatus_Status.SERVING) return "SERVING";
  if (s.status === HealthStatus_Status.NOT_SERVING) return "NOT_SERVING";
  return "UNKNOWN";
}

function toServiceHealth(s: HealthStatus): Omit<ServiceHealth, "name" | "port"> {
  return {
    status: statusName(s),
    phase: s.phase,
    exitCode: s.exitCode,
    restarts: s.restarts,
    uptimeSeconds: Math.round(s.uptimeSeconds * 10) / 10,
    message: s.message || undefined,
  };
}
export async function health(config: Config, project: string): Promise<ServiceHealth[]> {
  if (config.target === "swarm") return swarmHealth(config, project);
  const services = await deployedServices(config, project);
  const certs = await readOnlyControlPlaneCerts(config);
  return Promise.all(
    Object.entries(services).map(async ([name, svc]) => {
      try {
        const client = runtimeClient(
          {
            host: "127.0.0.1",
            port: svc.host_port,
            serverName: name,
            spiffeId: serviceSpiffeId(project, name),
          },
          certs,
        );
        try {
          return {
            name,
            port: svc.host_port,
            ...toServiceHealth(await healthCheck(client, 5_000)),
          };
        } finally {
          client.close();
        }
      } catch (err) {
        return {
          name,
          port: svc.host_port,
          status: "UNREACHABLE" as const,
          message: errorMessage(err),
        };
      }
    }),
  );
}
export interface ControlPlaneHealth {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

export async function controlPlaneHealth(config: Config): Promise<ControlPlaneHealth> {
  const checks: Record<string, { ok: boolean; detail: string }> = {};
  try {
    const v = await dockerClient(config).version();
    checks.docker = { ok: true, detail: `engine ${v.Version} (API ${v.ApiVersion})` };
  } catch (err) {
    checks.docker = { ok: false, detail: errorMessage(err) };
  }
  try {
    checks.terraform = { ok: true, detail: `terraform ${await tf.terraformVersion(config)}` };
  } catch (err) {
    checks.terraform = { ok: false, detail: errorMessage(err) };
  }
  return { ok: Object.values(checks).every((c) => c.ok), checks };
}
