// `iac adopt`: takes over a project whose containers run on this engine but whose state this
// machine lacks. The stack spec is read back from the containers (labels, env, mounts, ports),
// then every container is imported into fresh Terraform state (`terraform import`) and the
// images are recorded. The import step is one function
// (importStack) so the reliability work's reconcile-by-import can replace it. The provider's
// import is lossy, so adopt applies once to converge (recreating the containers from the same
// images, ports and mounts); after that a plan shows no changes.
import type Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { NotFoundError, UsageError } from "../kernel/errors.js";
import { type EventSink, logEvent, noopSink, stageEvent } from "../kernel/events.js";
import { DEFAULT_RESOURCES, providerCpus } from "../intake/resources.js";
import { dockerClient } from "../platform/docker.js";
import { writeFileAtomic } from "../platform/fs.js";
import * as tf from "../stack/terraform.js";
import { type StackService, type StackVars, writeStackVars } from "../stack/tfvars.js";
import { ensureNetwork } from "./network.js";
import { withProjectLock } from "./project.js";
import { rm } from "node:fs/promises";
import path from "node:path";

export interface AdoptResult {
  project: string;
  network: string;
  services: string[];
  imported: string[];
  /** Imported containers the converging apply recreated (same image, port, mounts). */
  recreated: string[];
  /** True when a plan after the import still shows changes (what remains is what a deploy changes). */
  planChanges: boolean;
}

/** Env the module sets itself; everything else in an app container came from the repos file. */
const MODULE_ENV =
  /^(IAC_(SERVICE|PROJECT|COMMIT|SIDECAR|RESTART_POLICY|HEALTH_STABLE_S|TLS_DIR|ALLOWED_CALLERS|PORT|OUTBOUND)|OTEL_SERVICE_NAME|OTEL_EXPORTER_OTLP_ENDPOINT)=/;
/** Env the image sets (the runner's), not the module. */
const IMAGE_ENV = /^(PATH|LANG|GPG_KEY|PYTHON[A-Z_]*|HOME|VIRTUAL_ENV|IAC_APP_DIR|IAC_ENTRYPOINT)=/;

type Inspect = Docker.ContainerInspectInfo;

function envMap(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf("=");
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function mountSource(c: Inspect | undefined, target: string): string {
  return c?.Mounts.find((m) => m.Destination === target)?.Source ?? "";
}

/** The stack spec the running containers were created from. */
export async function readRunningStack(
  config: Config,
  project: string,
): Promise<{ vars: StackVars; ids: Record<string, { app: string; sidecar?: string }> }> {
  const docker = dockerClient(config);
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`io.iac.project=${project}`] },
  });
  if (list.length === 0) {
    throw new NotFoundError(
      `no containers labelled io.iac.project=${project} on this engine: nothing to adopt`,
      "see what runs: iac status",
    );
  }
  const infos = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
  const apps = infos.filter((c) => c.Config.Labels["io.iac.role"] === "app");
  const sidecars = new Map(
    infos
      .filter((c) => c.Config.Labels["io.iac.role"] === "sidecar")
      .map((c) => [c.Config.Labels["io.iac.service"]!, c]),
  );
  if (apps.length === 0) {
    throw new UsageError(
      `project '${project}' has containers but no app container (io.iac.role=app) to adopt`,
      `remove what is left: iac destroy --project ${project}`,
    );
  }
  // Containers were created from image ids: name them by their tag again (iac/<service>:<hash>).
  const tagOf = async (c: Inspect): Promise<string> => {
    const tags =
      (
        await docker
          .getImage(c.Image)
          .inspect()
          .catch(() => undefined)
      )?.RepoTags ?? [];
    return tags.find((t) => t.startsWith("iac/")) ?? tags[0] ?? c.Config.Image;
  };
  const services: Record<string, StackService> = {};
  const ids: Record<string, { app: string; sidecar?: string }> = {};
  let network = "";
  let env0: Record<string, string> = {};
  for (const app of apps) {
    const labels = app.Config.Labels;
    const name = labels["io.iac.service"]!;
    const sidecar = sidecars.get(name);
    const env = envMap(app.Config.Env ?? []);
    env0 = env;
    network ||= Object.keys(app.NetworkSettings.Networks ?? {})[0] ?? "";
    const binding = app.HostConfig.PortBindings?.["15000/tcp"] as
      { HostPort: string }[] | undefined;
    services[name] = {
      image: await tagOf(app),
      image_id: app.Image,
      slug: labels["io.iac.slug"] ?? "",
      commit: labels["io.iac.commit"] ?? "",
      host_port: Number(binding?.[0]?.HostPort ?? 0),
      cert_dir: mountSource(sidecar ?? app, "/etc/iac/certs"),
      envoy_config: mountSource(sidecar, "/etc/envoy/envoy.yaml"),
      env: Object.fromEntries(
        (app.Config.Env ?? [])
          .filter((kv) => !MODULE_ENV.test(kv) && !IMAGE_ENV.test(kv))
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      ),
      config_hash: labels["io.iac.config-hash"] ?? "",
      port: Number(env.IAC_PORT ?? 0),
      memory_mb: app.HostConfig.Memory
        ? Math.round(app.HostConfig.Memory / 1024 / 1024)
        : DEFAULT_RESOURCES.memoryMb,
      cpus: providerCpus(
        app.HostConfig.NanoCpus ? app.HostConfig.NanoCpus / 1e9 : DEFAULT_RESOURCES.cpus,
      ),
      pids: app.HostConfig.PidsLimit || DEFAULT_RESOURCES.pids,
    };
    ids[name] = { app: app.Id, sidecar: sidecar?.Id };
  }
  const anySidecar = [...sidecars.values()][0];
  const anyApp = apps[0]!;
  const vars: StackVars = {
    project,
    network_name: network || config.network,
    docker_host: config.dockerHost ?? "unix:///var/run/docker.sock",
    ssh_opts: config.sshOpts,
    sidecar: anySidecar ? "envoy" : "none",
    envoy_image: anySidecar ? await tagOf(anySidecar) : config.envoyImage,
    ...(anySidecar && { envoy_image_id: anySidecar.Image }),
    otlp_endpoint: env0.OTEL_EXPORTER_OTLP_ENDPOINT ?? "",
    runner_restart_policy: env0.IAC_RESTART_POLICY ?? config.restartPolicy,
    allowed_callers: (env0.IAC_ALLOWED_CALLERS ?? "").split(",").filter(Boolean),
    health_stable_s: Number(env0.IAC_HEALTH_STABLE_S ?? config.healthStableS),
    log_max_size: anyApp.HostConfig.LogConfig?.Config?.["max-size"] ?? config.logs.maxSize,
    log_max_file: Number(anyApp.HostConfig.LogConfig?.Config?.["max-file"] ?? config.logs.maxFile),
    services,
  };
  return { vars, ids };
}

/** Imports the running containers into the (fresh) state (their image ids are in the tfvars). */
export async function importStack(
  run: tf.TerraformRun,
  vars: StackVars,
  ids: Record<string, { app: string; sidecar?: string }>,
): Promise<string[]> {
  const imported: string[] = [];
  for (const [name, id] of Object.entries(ids)) {
    const app = `docker_container.app["${name}"]`;
    await tf.importResource(run, app, id.app);
    imported.push(app);
    if (id.sidecar && vars.sidecar === "envoy") {
      const envoy = `docker_container.envoy["${name}"]`;
      await tf.importResource(run, envoy, id.sidecar);
      imported.push(envoy);
    }
  }
  return imported;
}

export async function adopt(
  config: Config,
  project: string,
  onEvent: EventSink = noopSink,
): Promise<AdoptResult> {
  const { vars, ids } = await readRunningStack(config, project);
  await ensureNetwork(config, vars.network_name);
  return withProjectLock(config, project, "adopt", async (dir) => {
    const known = tf.stateAddresses(dir).filter((r) => r.startsWith("docker_container."));
    if (known.length > 0) {
      throw new UsageError(
        `project '${project}' already has state here (${known.length} containers in ${dir})`,
        `nothing to adopt; see iac plan --project ${project}`,
      );
    }
    onEvent(
      stageEvent("plan", undefined, `adopting ${Object.keys(ids).length} service(s) of ${project}`),
    );
    await writeStackVars(dir, vars);
    const ports = Object.fromEntries(
      Object.entries(vars.services).map(([n, s]) => [n, s.host_port]),
    );
    await writeFileAtomic(path.join(dir, "ports.json"), JSON.stringify(ports, null, 2) + "\n");
    const run: tf.TerraformRun = {
      config,
      dir,
      onLine: (line) => onEvent(logEvent("terraform", line)),
    };
    await tf.init(run);
    const imported = await importStack(run, vars, ids);
    // The provider's import does not read back every attribute it manages (must_run, start,
    // the env it set vs the image's), so the first plan replaces the imported containers.
    // Converge once: same images, ports, mounts and labels, recreated under Terraform.
    let plan = await tf.plan(run);
    let recreated: string[] = [];
    if (plan.changes) {
      recreated = plan.containersRecreated;
      onEvent(
        stageEvent(
          "apply",
          undefined,
          `converging: recreating ${recreated.length} imported container(s) from the same images, ports and mounts`,
        ),
      );
      await tf.apply(run, plan.planFile);
      plan = await tf.plan(run);
    }
    await rm(plan.planFile, { force: true });
    onEvent(
      stageEvent(
        "done",
        undefined,
        plan.changes
          ? `adopted; the plan still shows ${plan.add} to add, ${plan.change} to change, ${plan.destroy} to destroy`
          : "adopted; plan: no changes",
      ),
    );
    return {
      project,
      network: vars.network_name,
      services: Object.keys(vars.services).sort(),
      imported,
      recreated,
      planChanges: plan.changes,
    };
  });
}
