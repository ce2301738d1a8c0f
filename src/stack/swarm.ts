// The swarm stack spec: tfvars for infra/swarm/ (the only other snake_case place), written
// into the project's swarm working directory next to a copy of that module.
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { CONTROL_PLANE_SPIFFE_ID, serviceSpiffeId } from "../mesh/pki.js";
import { INFRA_DIR, projectDir, readStackVars, syncModule, writeStackVars } from "./tfvars.js";

export const SWARM_MODULE_DIR = path.join(INFRA_DIR, "swarm");

export interface SwarmService {
  /** Task image (app + Envoy) by id "sha256:..." (or a registry reference with digest). */
  image: string;
  slug: string;
  commit: string;
  replicas: number;
  constraints: string[];
  published_port: number;
  cert_file: string;
  key_file: string;
  envoy_config: string;
  env: Record<string, string>;
}

export interface SwarmHealthVars {
  interval_s: number;
  timeout_s: number;
  retries: number;
  start_period_s: number;
}

export interface SwarmVars {
  project: string;
  network_name: string;
  docker_host: string;
  ssh_opts: string[];
  ca_file: string;
  otlp_endpoint: string;
  runner_restart_policy: string;
  allowed_callers: string[];
  health: SwarmHealthVars;
  services: Record<string, SwarmService>;
}

export const SWARM_HEALTH: SwarmHealthVars = {
  interval_s: 3,
  timeout_s: 3,
  retries: 3,
  start_period_s: 5,
};

/** Seconds Swarm watches a new task before it counts the update as good (see main.tf). */
export function monitorSeconds(h: SwarmHealthVars = SWARM_HEALTH): number {
  return h.start_period_s + h.interval_s * h.retries + h.timeout_s + 2;
}

export function swarmDir(config: Pick<Config, "stateDir">, project: string): string {
  return path.join(projectDir(config, project), "swarm");
}

export function swarmVars(
  config: Config,
  project: string,
  caFile: string,
  services: Record<string, SwarmService>,
): SwarmVars {
  return {
    project,
    network_name: config.network,
    docker_host: config.dockerHost ?? "unix:///var/run/docker.sock",
    ssh_opts: config.sshOpts,
    ca_file: caFile,
    otlp_endpoint: config.otlpEndpoint ?? "",
    runner_restart_policy: config.restartPolicy,
    allowed_callers: [CONTROL_PLANE_SPIFFE_ID, serviceSpiffeId(project, "*")],
    health: SWARM_HEALTH,
    services,
  };
}

export async function readSwarmVars(dir: string): Promise<SwarmVars | undefined> {
  return (await readStackVars(dir)) as unknown as SwarmVars | undefined;
}

export async function writeSwarmVars(dir: string, vars: SwarmVars): Promise<string> {
  return writeStackVars(dir, vars as never);
}

export async function syncSwarmModule(dir: string): Promise<void> {
  await syncModule(dir, SWARM_MODULE_DIR);
}
