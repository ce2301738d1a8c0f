// `iac deploy --target swarm`: the shared preparation (fetch, detect, build, certs, Envoy
// config), then per service a task image (app + Envoy), images onto every node (docker save |
// load, pinned by id), one terraform apply of infra/swarm, and a watch of each rollout: Swarm
// rolls a failing update back by itself; we report that with its reason and health-check every
// task through its Envoy (mTLS) at <node>:<published port>.
import path from "node:path";
import { readFile, rm } from "node:fs/promises";
import type { Config } from "../kernel/config.js";
import { UsageError, formatError } from "../kernel/errors.js";
import { type EventSink, logEvent, stageEvent } from "../kernel/events.js";
import { buildTaskImage } from "../image/task.js";
import { dockerClient } from "../platform/docker.js";
import { distributeImages } from "../platform/distribute.js";
import { pushImages } from "../platform/registry.js";
import { writeFileAtomic } from "../platform/fs.js";
import { acquireLock } from "../platform/lock.js";
import { mapLimit } from "../platform/limit.js";
import { assignPorts } from "../stack/ports.js";
import {
  type SwarmService,
  readSwarmVars,
  swarmDir,
  swarmVars,
  syncSwarmModule,
  writeSwarmVars,
} from "../stack/swarm.js";
import * as tf from "../stack/terraform.js";
import type { DeployReport, DeployRequest, Outcome, ServiceReport } from "./deploy.js";
import { prepareService } from "./deploy.js";
import { assertUniqueNames } from "./preflight.js";
import { realStages } from "./stages.js";
import { loadedImagesFile } from "./swarm-destroy.js";
import { waitForRollouts, taskHealth } from "./swarm-status.js";

/** Nodes that need the images: IAC_SWARM_NODES, or just the manager (a one-node swarm). */
export function swarmNodes(config: Config): string[] {
  return config.swarmNodes.length > 0
    ? config.swarmNodes
    : [config.dockerHost ?? "unix:///var/run/docker.sock"];
}

export async function withSwarmLock<T>(
  config: Config,
  project: string,
  operation: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = swarmDir(config, project);
  await syncSwarmModule(dir);
  const release = await acquireLock(path.join(dir, ".lock"), operation);
  try {
    return await fn(dir);
  } finally {
    await release();
  }
}

async function assertSwarmManager(config: Config): Promise<void> {
  const info = await dockerClient(config).info();
  const swarm = info.Swarm as { LocalNodeState?: string; ControlAvailable?: boolean } | undefined;
  if (swarm?.LocalNodeState !== "active" || !swarm.ControlAvailable) {
    throw new UsageError(
      `the Docker engine at ${config.dockerHost ?? "unix:///var/run/docker.sock"} is not a Swarm manager ` +
        `(swarm state: ${swarm?.LocalNodeState ?? "unknown"})`,
      "point DOCKER_HOST at a manager node (docker swarm init / docker node promote), or deploy with --target local",
    );
  }
}

export async function deploySwarm(
  config: Config,
  req: DeployRequest,
  onEvent: EventSink,
  signal?: AbortSignal,
): Promise<DeployReport> {
  if (req.services.length === 0)
    throw new UsageError("nothing to deploy: the service list is empty");
  if (config.sidecar !== "envoy")
    throw new UsageError(
      "the swarm target needs the Envoy sidecar (IAC_SIDECAR=envoy): it is the task's only way in",
    );
  assertUniqueNames(req.services);
  await assertSwarmManager(config);
  config = await realStages.preflight(config, req.project, onEvent);
  const cpCerts = await realStages.controlPlaneCerts(config);
  const docker = dockerClient(config);
  const { project } = req;

  const result = await withSwarmLock(config, project, "deploy", async (dir) => {
    for (const s of req.services) onEvent(stageEvent("queued", s.name, s.slug.raw));
    const ctx = { config, project, onEvent, signal };
    const outcomes: Outcome[] = await mapLimit(req.services, config.concurrency, (spec) =>
      prepareService(realStages, ctx, spec, "deploy"),
    );
    const previous = await readSwarmVars(dir);
    const services: Record<string, SwarmService> = {};
    const tasks: { tag: string; id: string }[] = [];
    const reports: ServiceReport[] = [];
    const fresh = new Set<string>();
    for (const o of outcomes) {
      const spec = o.spec;
      const report: ServiceReport = {
        name: spec.name,
        slug: spec.slug.raw,
        commit: o.commit,
        entrypoint: o.entrypoint,
        image: o.image,
        status: "FAILED",
      };
      reports.push(report);
      let error = o.ok ? undefined : o.error;
      if (o.ok) {
        try {
          const task = await buildTaskImage({
            docker,
            service: spec.name,
            app: { tag: o.stack.image, id: o.imageId },
            envoyImage: config.envoyImage,
            onEvent,
            signal,
          });
          tasks.push(task);
          report.image = task.tag;
          services[spec.name] = {
            image: task.id,
            slug: o.stack.slug,
            commit: o.stack.commit,
            replicas: spec.replicas ?? 1,
            constraints: spec.placement ?? [],
            published_port: 0,
            cert_file: path.join(o.stack.cert_dir, "cert.pem"),
            key_file: path.join(o.stack.cert_dir, "key.pem"),
            envoy_config: "",
            env: o.stack.env,
          };
          fresh.add(spec.name);
          continue;
        } catch (err) {
          error = formatError(err);
        }
      }
      report.error = error;
      // One bad repo never takes down what was running: keep its previous definition.
      const before = previous?.services[spec.name];
      if (before) {
        services[spec.name] = before;
        report.error += " (kept the previously deployed version)";
        report.image = undefined; // not rolled out this time: no rollout to watch
      }
    }
    // Envoy configs once the stack's members are known (as the local target does); peers are
    // reached by their service name, which dnsrr resolves to the peer's task addresses.
    const members = Object.keys(services);
    const portOf = (n: string) => req.services.find((s) => s.name === n)?.port;
    for (const name of fresh) {
      services[name]!.envoy_config = await realStages.envoyConfig(
        { name, port: portOf(name) },
        members.filter((n) => n !== name).map((n) => ({ name: n, port: portOf(n) })),
        ctx,
      );
    }
    if (Object.keys(services).length === 0 && !previous) {
      onEvent(stageEvent("plan", undefined, "nothing to apply: no service could be prepared"));
      return { reports, applied: false, started: Date.now() };
    }
    const ports = await assignPorts(path.join(dir, "ports.json"), Object.keys(services));
    for (const [name, svc] of Object.entries(services)) svc.published_port = ports[name]!;
    for (const r of reports) r.port = services[r.name]?.published_port;

    if (config.registry) {
      // The nodes pull from the registry: services reference the pushed digest.
      onEvent(
        stageEvent("plan", undefined, `images: ${tasks.length} task images -> ${config.registry}`),
      );
      const pushed = await pushImages(
        docker,
        config.registry,
        tasks.map((t) => t.tag),
        (p) => onEvent(logEvent("pipeline", `pushed ${p.ref} (${p.ms} ms)`)),
      );
      for (const name of fresh) {
        const svc = services[name]!;
        const task = tasks.find((t) => t.id === svc.image);
        const ref = pushed.find((p) => p.tag === task?.tag)?.ref;
        if (ref) svc.image = ref;
      }
    } else {
      const nodes = swarmNodes(config);
      onEvent(
        stageEvent(
          "plan",
          undefined,
          `images: ${tasks.length} task images -> ${nodes.length} nodes (docker save | load)`,
        ),
      );
      await distributeImages(docker, nodes, tasks, (l) =>
        onEvent(logEvent("pipeline", `${l.node}: ${l.image} ${l.result} (${l.ms} ms)`)),
      );
      const known = await readFile(loadedImagesFile(dir), "utf8")
        .then((t) => JSON.parse(t) as string[])
        .catch(() => [] as string[]);
      const loaded = [...new Set([...known, ...tasks.map((t) => t.tag)])];
      await writeFileAtomic(loadedImagesFile(dir), JSON.stringify(loaded, null, 2) + "\n");
    }
    await writeSwarmVars(dir, swarmVars(config, project, cpCerts.caFile, services));
    const run: tf.TerraformRun = {
      config,
      dir,
      signal,
      onLine: (line) => onEvent(logEvent("terraform", line)),
    };
    onEvent(
      stageEvent(
        "plan",
        undefined,
        `terraform plan (swarm, ${Object.keys(services).length} services)`,
      ),
    );
    await tf.init(run);
    const plan = await tf.plan(run);
    const started = Date.now();
    if (plan.changes) {
      onEvent(
        stageEvent(
          "apply",
          undefined,
          `terraform apply: ${plan.add} to add, ${plan.change} to change, ${plan.destroy} to destroy`,
        ),
      );
      await tf.apply(run, plan.planFile);
    } else {
      await rm(plan.planFile, { force: true });
      onEvent(
        stageEvent("apply", undefined, "no changes: infrastructure matches the configuration"),
      );
    }
    return { reports, applied: plan.changes, started };
  });

  const reports = result.reports;
  const built = reports.filter((r) => r.port !== undefined && r.image !== undefined);
  const rollouts = await waitForRollouts(
    config,
    project,
    built.map((r) => r.name),
    result.started,
    onEvent,
  );
  await Promise.all(
    built.map(async (r) => {
      const rollout = rollouts[r.name]!;
      if (!rollout.ok) {
        r.status = "FAILED";
        r.error = rollout.reason;
        onEvent(stageEvent("failed", r.name, rollout.reason.split("\n")[0]));
        return;
      }
      onEvent(
        stageEvent("health", r.name, `gRPC HealthCheck of each task via <node>:${r.port} (mTLS)`),
      );
      const rows = await taskHealth(config, project, r.name, cpCerts, {
        deadlineMs: config.healthTimeoutMs,
      });
      const bad = rows.filter((t) => t.status !== "SERVING");
      r.status = rows.length > 0 && bad.length === 0 ? "SERVING" : "NOT_SERVING";
      if (bad.length > 0 || rows.length === 0)
        r.error =
          bad
            .map(
              (t) =>
                `replica ${t.replica ?? "?"} on ${t.node ?? "?"}: ${t.status} ${t.message ?? ""}`,
            )
            .join("; ") || "no running task";
      onEvent(stageEvent(r.status === "SERVING" ? "done" : "failed", r.name, r.status));
    }),
  );
  const report: DeployReport = { project, services: reports, applied: result.applied };
  onEvent({ type: "result", ts: new Date().toISOString(), result: report });
  return report;
}
