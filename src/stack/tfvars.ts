// The stack spec handed to Terraform: one tfvars JSON per project, written atomically into
// the project's working directory (.iac/<project>/), next to a copy of the infra/ module.
import { copyFile, mkdir, readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../kernel/config.js";
import { writeFileAtomic } from "../platform/fs.js";
import { CONTROL_PLANE_SPIFFE_ID } from "../kernel/names.js";

export const INFRA_DIR = fileURLToPath(new URL("../../infra/", import.meta.url));

export interface StackService {
  image: string;
  /** The image's id (sha256:...), what the container runs; absent until built (plan) or in older state. */
  image_id?: string;
  slug: string;
  commit: string;
  host_port: number;
  cert_dir: string;
  envoy_config: string;
  env: Record<string, string>;
  /**
   * The port the app serves its peers on (127.0.0.1), passed to it as IAC_PORT; 0 = none.
   * Absent in state written before ports existed (the module defaults it to 0).
   */
  port?: number;
  /** Container limits: memory in MiB (hard, no extra swap), CPUs, processes. */
  memory_mb: number;
  /** As the provider reads it back ("1.0", "0.5"): see intake/resources.ts providerCpus. */
  cpus: string;
  pids: number;
  /** Hash of the files the containers bind-mount (envoy config, cert): a change replaces them. */
  config_hash: string;
}

export interface StackVars {
  project: string;
  network_name: string;
  docker_host: string;
  ssh_opts: string[];
  sidecar: "envoy" | "none";
  envoy_image: string;
  /** envoy_image's id on the engine (sha256:...); absent = the module uses the name. */
  envoy_image_id?: string;
  otlp_endpoint: string;
  runner_restart_policy: string;
  health_stable_s: number;
  log_max_size: string;
  log_max_file: number;
  /** Who may call the runtime API of a runner that terminates mTLS itself (IAC_SIDECAR=none). */
  allowed_callers: string[];
  services: Record<string, StackService>;
}

export function projectDir(config: Pick<Config, "stateDir">, project: string): string {
  return path.join(config.stateDir, project);
}

export function tfvarsPath(dir: string): string {
  return path.join(dir, "terraform.tfvars.json");
}

export function stackVars(
  config: Config,
  project: string,
  services: Record<string, StackService>,
): StackVars {
  return {
    project,
    network_name: config.network,
    docker_host: config.dockerHost ?? "unix:///var/run/docker.sock",
    ssh_opts: config.sshOpts,
    sidecar: config.sidecar,
    envoy_image: config.envoyImage,
    otlp_endpoint: config.otlpEndpoint ?? "",
    runner_restart_policy: config.restartPolicy,
    health_stable_s: config.healthStableS,
    log_max_size: config.logs.maxSize,
    log_max_file: config.logs.maxFile,
    // The runtime API (logs, health) is for the control plane only, as Envoy's RBAC rule.
    allowed_callers: [CONTROL_PLANE_SPIFFE_ID],
    services,
  };
}

export async function readStackVars(dir: string): Promise<StackVars | undefined> {
  try {
    return JSON.parse(await readFile(tfvarsPath(dir), "utf8")) as StackVars;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export async function writeStackVars(dir: string, vars: StackVars): Promise<string> {
  const file = tfvarsPath(dir);
  await writeFileAtomic(file, JSON.stringify(vars, null, 2) + "\n");
  return file;
}

/** Copies the module's .tf files into the project dir (terraform runs there, state stays there). */
export async function syncModule(dir: string, moduleDir: string = INFRA_DIR): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const name of await readdir(moduleDir)) {
    if (!name.endsWith(".tf")) continue;
    const src = path.join(moduleDir, name);
    const dst = path.join(dir, name);
    const [a, b] = await Promise.all([
      readFile(src, "utf8"),
      readFile(dst, "utf8").catch(() => ""),
    ]);
    if (a !== b) await copyFile(src, dst);
  }
}
