// The pipeline: repos -> fetch -> detect -> build -> certs/envoy -> tfvars -> one terraform
// apply -> health in parallel. One service failing is reported and never stops the others.
// `plan` shares everything up to `terraform plan` and never applies.
// The stages are injected (stages.ts); each service's outcome is an immutable
// `Prepared | Failed`, and the report and the tfvars are derived from the outcomes at the end.
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { HealthStatus_Status } from "../gen/controlplane.js";
import { UsageError, errorMessage, formatError } from "../kernel/errors.js";
import { explainWithConfig } from "../platform/syserror.js";
import { type EventSink, logEvent, noopSink, stageEvent } from "../kernel/events.js";
import type { CertPaths, ServiceSpec } from "../kernel/types.js";
import { throwIfInterrupted } from "../platform/interrupt.js";
import { mapLimit } from "../platform/limit.js";
import { isDefinitiveFailure } from "../runtime/client.js";
import { runningServices } from "../stack/reconcile.js";
import { writeFileAtomic } from "../platform/fs.js";
import { DEFAULT_RESOURCES, providerCpus } from "../intake/resources.js";
import { dockerClient } from "../platform/docker.js";
import { assignPorts } from "../stack/ports.js";
import { type PlanSummary, type TerraformRun, emptyPlan } from "../stack/terraform.js";
import {
  type StackService,
  projectDir,
  readStackVars,
  stackVars,
  writeStackVars,
} from "../stack/tfvars.js";
import { assertUniqueNames } from "./preflight.js";
import { cliPrincipal, withProjectLock } from "./project.js";
import { type Release, type ReleaseService, appendRelease } from "../stack/releases.js";
import { type StageContext, type Stages, realStages } from "./stages.js";
import { statusName } from "./status.js";
import { type PlannedAction, serviceAction } from "./plan-actions.js";
import { deploySwarm } from "./swarm-deploy.js";
import {
  type FastPath,
  clearApplied,
  desiredStackHash,
  expectedContainers,
  noOpFastPath,
  recordApplied,
} from "./noop.js";

/** How many of a failed service's last log lines go into the result. */
const FAILURE_LOG_LINES = 20;

export interface ServiceReport {
  name: string;
  slug: string;
  commit?: string;
  entrypoint?: { kind: string; argv: string[]; rule: string };
  image?: string;
  status: "SERVING" | "NOT_SERVING" | "FAILED";
  port?: number;
  error?: string;
  /** `iac plan`: what a deploy would do to this service. */
  action?: PlannedAction;
  /** `iac plan`: whether a deploy would build its image. */
  build?: "would build" | "exists";
  /** main()'s restarts seen while waiting for health. */
  restarts?: number;
  /** A service that failed health: main()'s last output lines (from the runner's buffer). */
  logs?: string[];
}

export interface DeployReport {
  project: string;
  services: ServiceReport[];
  /** The release this deploy recorded (only when it applied changes). */
  release?: number;
  /** What terraform did: false when the plan had no changes. */
  applied?: boolean;
  containersRecreated?: string[];
  /** The no-op fast path: the stack matched the last apply, terraform did not run. */
  terraformSkipped?: boolean;
}
export interface DeployRequest {
  project: string;
  services: ServiceSpec[];
  /** Who asks (recorded in the release): an API principal; default the CLI user. */
  principal?: string;
  /** What kind of release an apply records (a rollback names the release it went back to). */
  release?: { kind: Release["kind"]; rollbackOf?: number };
}

/** What the stages learned about a service before it failed or was prepared. */
interface Progress {
  readonly spec: ServiceSpec;
  readonly commit?: string;
  readonly entrypoint?: { kind: string; argv: string[]; rule: string };
  readonly image?: string;
  readonly build?: "would build" | "exists";
}
/** Built, with its cert (and sidecar config): ready for the stack. */
export interface Prepared extends Progress {
  readonly ok: true;
  /** Its stack entry, without the sidecar config (written once the members are known). */
  readonly stack: StackService;
  /** The cert files (their hash, with the Envoy config's, is config_hash). */
  readonly certFiles: string[];
  /** The built app image's id (the swarm target builds its task image FROM it). */
  readonly imageId: string;
}
/** A stage failed; `error` is the message with its hint. */
export interface Failed extends Progress {
  readonly ok: false;
  readonly error: string;
}
export type Outcome = Prepared | Failed;

/** `deploy` builds images; `plan` only computes their tags (content hashes) and never builds. */
type Mode = "deploy" | "plan";

/** fetch -> detect -> build -> certs (+ envoy config) for one service; never throws. */
export async function prepareService(
  stages: Stages,
  ctx: StageContext,
  spec: ServiceSpec,
  mode: Mode,
): Promise<Outcome> {
  const { onEvent } = ctx;
  let progress: Progress = { spec };
  try {
    // Each stage event describes the stage being entered, not the one just finished.
    onEvent(stageEvent("fetch", spec.name, spec.slug.raw));
    const source = await stages.fetch(spec, ctx);
    progress = { ...progress, commit: source.commit };
    onEvent(stageEvent("detect", spec.name, `main() at commit ${source.commit.slice(0, 12)}`));
    const entrypoint = await stages.detect(source, spec);
    const { kind, argv, rule } = entrypoint;
    progress = { ...progress, entrypoint: { kind, argv, rule } };
    // A plan has no image id (nothing is built); only the swarm target's deploy reads it.
    let image: { tag: string; id?: string };
    if (mode === "plan") {
      // Plan without builds: the tag is a content hash, so whether the image exists says
      // whether a deploy would build it.
      const tag = await stages.imageTag(spec, source, entrypoint, ctx);
      image = tag;
      progress = { ...progress, image: tag.tag, build: tag.exists ? "exists" : "would build" };
    } else {
      onEvent(stageEvent("build", spec.name, `${entrypoint.kind}: ${entrypoint.argv.join(" ")}`));
      const built = await stages.build(spec, source, entrypoint, ctx);
      image = built;
      progress = { ...progress, image: built.tag };
      onEvent(logEvent("build", `${built.built ? "built" : "reused"} ${built.tag}`, spec.name));
    }
    onEvent(stageEvent("certs", spec.name, `certificate for spiffe://${ctx.project}/${spec.name}`));
    const certs = await stages.certs(spec, ctx);
    const stack: StackService = {
      image: image.tag,
      ...(image.id && { image_id: image.id }),
      slug: spec.slug.raw,
      commit: source.commit,
      host_port: 0,
      cert_dir: path.dirname(certs.certFile),
      envoy_config: "", // written once the stack's members are known
      env: spec.env,
      port: spec.port ?? 0,
      memory_mb: (spec.resources ?? DEFAULT_RESOURCES).memoryMb,
      cpus: providerCpus((spec.resources ?? DEFAULT_RESOURCES).cpus),
      pids: (spec.resources ?? DEFAULT_RESOURCES).pids,
      config_hash: "",
    };
    return {
      ...progress,
      ok: true,
      stack,
      certFiles: [certs.certFile, certs.caFile],
      imageId: image.id ?? "",
    };
  } catch (caught) {
    const err = explainWithConfig(caught, ctx.config);
    onEvent(stageEvent("failed", spec.name, errorMessage(err).split("\n")[0]));
    return { ...progress, ok: false, error: formatError(err) };
  }
}

async function mountedFilesHash(files: string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const f of files) hash.update(f ? await readFile(f) : "").update("\0");
  return hash.digest("hex").slice(0, 16);
}

export interface PrepareResult {
  outcomes: Outcome[];
  /** Failed services whose previously applied definition stays in the stack. */
  kept: Set<string>;
  /** Host port of every service in the stack. */
  ports: Record<string, number>;
  plan: PlanSummary;
  /** True when terraform was not run at all (nothing could be prepared, nothing deployed before). */
  skipped: boolean;
  /** Deployed services the new stack no longer has (terraform removes them). */
  removed: string[];
  /** `plan`: what a deploy would do to each service. */
  actions: Map<string, PlannedAction>;
  /** `deploy`: the desired stack's hash (noop.ts), recorded after a successful apply. */
  stackHash?: string;
  /** `deploy`: the no-op fast path applied, terraform did not run. */
  terraformSkipped?: boolean;
}

/**
 * Everything up to and including `terraform plan`; runs with the project lock held by the
 * caller. Shared by `deploy` (which applies) and `plan` (which stops there).
 */
async function prepareAndPlan(
  config: Config,
  stages: Stages,
  req: DeployRequest,
  onEvent: EventSink,
  signal: AbortSignal | undefined,
  hardSignal: AbortSignal | undefined,
  mode: Mode,
): Promise<PrepareResult> {
  const { project } = req;
  const dir = projectDir(config, project);
  for (const s of req.services) onEvent(stageEvent("queued", s.name, s.slug.raw));
  if (config.sidecar === "none") {
    for (const s of req.services.filter((x) => x.port !== undefined))
      onEvent(
        logEvent(
          "pipeline",
          `warning: port ${s.port} is not reachable by peers with IAC_SIDECAR=none (the mesh needs the Envoy sidecar)`,
          s.name,
        ),
      );
  }
  const ctx: StageContext = { config, project, onEvent, signal };

  const outcomes = await mapLimit(req.services, config.concurrency, (spec) =>
    prepareService(stages, ctx, spec, mode),
  );

  throwIfInterrupted(signal, "fetch/build");
  // A service that failed now keeps its previously applied definition (if any), so one bad
  // repo never takes down what was running.
  const previous = await readStackVars(dir);
  const kept = new Set<string>();
  const defined: Record<string, StackService> = {};
  for (const o of outcomes) {
    const name = o.spec.name;
    if (o.ok) defined[name] = o.stack;
    else if (previous?.services[name]) {
      defined[name] = previous.services[name]!;
      kept.add(name);
    }
  }
  // Sidecar configs once the stack's members are known: a repo that failed (and never ran) is
  // no peer, so adding it to the file never changes (and restarts) the others' sidecars.
  const members = Object.keys(defined);
  for (const o of outcomes) {
    if (!o.ok) continue;
    const name = o.spec.name;
    const port = (n: string) => defined[n]!.port || undefined;
    const envoyConfig =
      config.sidecar === "envoy"
        ? await stages.envoyConfig(
            { name, port: port(name) },
            members.filter((n) => n !== name).map((n) => ({ name: n, port: port(n) })),
            ctx,
          )
        : "";
    defined[name] = {
      ...o.stack,
      envoy_config: envoyConfig,
      config_hash: await mountedFilesHash([...o.certFiles, envoyConfig]),
    };
  }
  const planFile = path.join(dir, "tfplan");
  if (Object.keys(defined).length === 0 && !previous) {
    // Nothing could be prepared and nothing ran before: leave no state behind.
    onEvent(stageEvent("plan", undefined, "nothing to apply: no service could be prepared"));
    return {
      outcomes,
      kept,
      ports: {},
      plan: emptyPlan(false, planFile),
      skipped: true,
      removed: [],
      actions: new Map(),
    };
  }
  // Ports known from ports.json, else read back from the running containers (a lost state
  // folder must not move a service to another host port).
  const ports = await assignPorts(
    path.join(dir, "ports.json"),
    Object.keys(defined),
    await runningServices(config, project),
  );
  const stack = Object.fromEntries(
    Object.entries(defined).map(([name, svc]) => [name, { ...svc, host_port: ports[name]! }]),
  );
  // Containers run image ids (the module has no docker_image resource): a kept service from an
  // older tfvars, or a plan's existing image, is looked up by tag; a plan's unbuilt one stays
  // without (the module falls back to the tag, and the container is to be replaced anyway).
  // One key order whatever the source (the no-op fast path hashes this JSON).
  for (const [name, { image, image_id, ...rest }] of Object.entries(stack)) {
    const id = image_id ?? (await stages.imageId(config, image));
    stack[name] = { image, ...(id && { image_id: id }), ...rest };
  }
  const vars = stackVars(config, project, stack);
  if (config.sidecar === "envoy") {
    const envoyId = await stages.imageId(config, config.envoyImage);
    if (envoyId) vars.envoy_image_id = envoyId;
  }
  // `plan` never touches terraform.tfvars.json (what was applied, read by health/logs/status):
  // it hands its stack to terraform as a -var-file that wins over the applied one.
  const planVars = path.join(dir, "plan.tfvars.json");
  if (mode === "plan") await writeFileAtomic(planVars, JSON.stringify(vars, null, 2) + "\n");
  else await writeStackVars(dir, vars);
  // The no-op fast path (noop.ts): the stack as last applied and every container running as
  // applied (one Docker list call) -> no terraform at all. A plan answers "what would deploy
  // do", so it takes the same path: a deploy would change nothing.
  const stackHash = await desiredStackHash(config, dir, JSON.stringify(vars));
  const fast: FastPath = await noOpFastPath(
    dir,
    stackHash,
    await stages.containers(config, project),
  );
  let plan: PlanSummary;
  if (fast.skip) {
    if (mode === "plan") await rm(planVars, { force: true });
    onEvent(stageEvent("plan", undefined, fast.reason));
    plan = emptyPlan(false, planFile);
  } else {
    const run = terraformRun(config, dir, onEvent, signal, hardSignal);
    const why = `; ${fast.reason}`;
    onEvent(
      stageEvent("plan", undefined, `terraform plan (${Object.keys(stack).length} services${why})`),
    );
    try {
      await stages.terraform.init(run);
      // An image a deploy would build does not exist yet. That is fine for the plan: the module
      // gets its tag instead of an id, which plans as "replace docker_container".
      // `iac plan`: terraform's machine-readable UI, one process (no `show -json`); a deploy
      // keeps the full human diff in its log.
      plan = await stages.terraform.plan(
        run,
        mode === "plan" ? { varFile: planVars, json: true } : {},
      );
    } finally {
      if (mode === "plan") await rm(planVars, { force: true });
    }
  }
  const removed = Object.keys(previous?.services ?? {}).filter((n) => !stack[n]);
  const actions = new Map<string, PlannedAction>();
  for (const o of outcomes) {
    const name = o.spec.name;
    const before = previous?.services[name];
    actions.set(
      name,
      o.ok
        ? serviceAction(name, before, stack[name], plan.resources)
        : { kind: "failed", text: before ? "! failed (keeps the deployed version)" : "! failed" },
    );
  }
  return {
    outcomes,
    kept,
    ports,
    plan,
    skipped: false,
    removed,
    actions,
    stackHash,
    terraformSkipped: fast.skip,
  };
}

function terraformRun(
  config: Config,
  dir: string,
  onEvent: EventSink,
  signal?: AbortSignal,
  hardSignal?: AbortSignal,
): TerraformRun {
  return {
    config,
    dir,
    signal,
    hardSignal,
    onLine: (line) => onEvent(logEvent("terraform", line)),
  };
}

interface Health {
  status: "SERVING" | "NOT_SERVING" | "FAILED";
  error?: string;
  restarts?: number;
  logs?: string[];
}

/** The report line of one service, derived from its outcome (and health, after an apply). */
function serviceReport(o: Outcome, r: PrepareResult, health?: Health): ServiceReport {
  const name = o.spec.name;
  const base: ServiceReport = {
    name,
    slug: o.spec.slug.raw,
    ...(o.commit !== undefined && { commit: o.commit }),
    ...(o.entrypoint !== undefined && { entrypoint: o.entrypoint }),
    ...(o.image !== undefined && { image: o.image }),
    ...(o.build !== undefined && { build: o.build }),
    ...(r.actions.has(name) && { action: r.actions.get(name) }),
    status: "FAILED",
    port: r.ports[name],
  };
  if (!o.ok) {
    const kept = r.kept.has(name) ? " (kept the previously deployed version)" : "";
    return { ...base, error: o.error + kept };
  }
  if (!health) return { ...base, status: "NOT_SERVING" };
  return {
    ...base,
    status: health.status,
    ...(health.error !== undefined && { error: health.error }),
    ...(health.restarts ? { restarts: health.restarts } : {}),
    ...(health.logs !== undefined && { logs: health.logs }),
  };
}

export async function deploy(
  config: Config,
  req: DeployRequest,
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
  stages: Stages = realStages,
  /** A second interrupt: terraform is killed instead of waited for. */
  hardSignal?: AbortSignal,
): Promise<DeployReport> {
  if (config.target === "swarm") return deploySwarm(config, req, onEvent, signal);
  if (req.services.length === 0)
    throw new UsageError("nothing to deploy: the service list is empty");
  assertUniqueNames(req.services);
  config = await stages.preflight(config, req.project, onEvent);
  const cpCerts = await stages.controlPlaneCerts(config);

  // The lock is held through the health phase: a destroy cannot remove what is being checked.
  const health = new Map<string, Health>();
  const result = await withProjectLock(config, req.project, "deploy", async (dir) => {
    const prepared = await prepareAndPlan(
      config,
      stages,
      req,
      onEvent,
      signal,
      hardSignal,
      "deploy",
    );
    const { plan } = prepared;
    if (prepared.skipped) return prepared;
    if (plan.changes) {
      onEvent(
        stageEvent(
          "apply",
          undefined,
          `terraform apply: ${plan.add} to add, ${plan.change} to change, ${plan.destroy} to destroy`,
        ),
      );
      // Whatever happens next, the last apply's record no longer describes the stack.
      await clearApplied(dir);
      await stages.terraform.apply(
        terraformRun(config, dir, onEvent, signal, hardSignal),
        plan.planFile,
      );
    } else if (!prepared.terraformSkipped) {
      await rm(plan.planFile, { force: true });
      onEvent(
        stageEvent("apply", undefined, "no changes: infrastructure matches the configuration"),
      );
    }
    // The fast path found every container as the last apply left it, limits included.
    if (!prepared.terraformSkipped) await applyPidsLimits(config, req.project, dir, onEvent);
    // What the next deploy's fast path compares with (noop.ts): the stack and its containers.
    // Hashed again now: terraform init may just have written the provider lock file.
    const applied = await readStackVars(dir);
    if (!prepared.terraformSkipped && prepared.stackHash && applied) {
      const expected = expectedContainers(req.project, Object.keys(prepared.ports), config.sidecar);
      await recordApplied(
        dir,
        await desiredStackHash(config, dir, JSON.stringify(applied)),
        expected,
        await stages.containers(config, req.project),
      );
    }
    await checkHealth(stages, config, prepared, cpCerts, health, onEvent, signal, req.project);
    const services = prepared.outcomes.map((o) =>
      serviceReport(o, prepared, health.get(o.spec.name)),
    );
    // A deploy that applied records a release (still under the lock, after the health checks).
    const release = plan.changes ? await recordRelease(config, dir, req, services) : undefined;
    return { ...prepared, services, release };
  });

  const report: DeployReport = {
    project: req.project,
    services:
      "services" in result
        ? result.services
        : result.outcomes.map((o) => serviceReport(o, result, health.get(o.spec.name))),
    ...("release" in result && result.release && { release: result.release.number }),
    // undefined when terraform never ran (nothing could be prepared)
    applied: result.skipped ? undefined : result.plan.changes,
    containersRecreated: result.plan.containersRecreated,
    ...(result.terraformSkipped && { terraformSkipped: true }),
  };
  onEvent({ type: "result", ts: new Date().toISOString(), result: report });
  return report;
}

/**
 * Only services built this time are health-checked; a failed one stays FAILED, even if a
 * previous version still runs. A definitive failure (main() exited non-zero inside the
 * runner's stability window) is FAILED at once; an interrupt ends the wait at once.
 */
async function checkHealth(
  stages: Stages,
  config: Config,
  result: PrepareResult,
  cpCerts: CertPaths,
  health: Map<string, Health>,
  onEvent: EventSink,
  signal?: AbortSignal,
  project?: string,
): Promise<void> {
  await Promise.all(
    result.outcomes.map(async (o) => {
      const name = o.spec.name;
      const port = result.ports[name];
      if (!o.ok || port === undefined) return;
      const target = { port, service: name, project };
      const started = Date.now();
      const limit = Math.round(config.healthTimeoutMs / 1000);
      onEvent(stageEvent("health", name, `health 0s/${limit}s · gRPC via 127.0.0.1:${port}`));
      let h: Health;
      let restarts: number | undefined;
      try {
        const status = await stages.waitForServing(
          target,
          cpCerts,
          config.healthTimeoutMs,
          signal,
          // The row reads `health 12s/90s · restarts 1` while waiting.
          (_n, res) => {
            const waited = Math.round((Date.now() - started) / 1000);
            if (!(res instanceof Error) && res.restarts) restarts = res.restarts;
            const phase = res instanceof Error ? "" : ` · ${res.phase || statusName(res)}`;
            const line = `health ${waited}s/${limit}s${restarts ? ` · restarts ${restarts}` : ""}${phase}`;
            onEvent(logEvent("health", line, name));
          },
        );
        if (status.restarts) restarts = status.restarts;
        if (status.status === HealthStatus_Status.SERVING) h = { status: "SERVING" };
        else if (isDefinitiveFailure(status)) {
          h = {
            status: "FAILED",
            error:
              `${status.message || `main() exited with code ${status.exitCode}`} ` +
              `(exit code ${status.exitCode}, phase ${status.phase}, ${status.restarts} restarts)`,
          };
        } else {
          h = {
            status: "NOT_SERVING",
            error: status.message || `health status ${statusName(status)}`,
          };
        }
      } catch (err) {
        if (signal?.aborted) return;
        h = { status: "NOT_SERVING", error: errorMessage(err) };
      }
      if (restarts) h.restarts = restarts;
      // Fail fast with the reason: main()'s last lines are what the user needs next.
      if (h.status !== "SERVING")
        h.logs = await stages.recentLogs(target, cpCerts, FAILURE_LOG_LINES).catch(() => undefined);
      health.set(name, h);
      onEvent(stageEvent(h.status === "SERVING" ? "done" : "failed", name, h.error ?? h.status));
    }),
  );
  throwIfInterrupted(signal, "the health check");
}

/** Appends the release an apply made: what Terraform got (tfvars) and each service's status. */
async function recordRelease(
  config: Config,
  dir: string,
  req: DeployRequest,
  reports: ServiceReport[],
): Promise<Release> {
  const vars = await readStackVars(dir);
  const docker = dockerClient(config);
  const byName = new Map(reports.map((r) => [r.name, r]));
  const services: ReleaseService[] = await Promise.all(
    Object.entries(vars?.services ?? {}).map(async ([name, svc]) => {
      const imageId = await docker
        .getImage(svc.image)
        .inspect()
        .then((i) => i.Id)
        .catch(() => undefined);
      return {
        name,
        slug: svc.slug,
        commit: svc.commit,
        image: svc.image,
        ...(imageId && { image_id: imageId }),
        status: byName.get(name)?.status ?? "KEPT",
        env: svc.env,
        port: svc.port,
      };
    }),
  );
  return appendRelease(dir, {
    principal: req.principal ?? cliPrincipal(),
    kind: req.release?.kind ?? "deploy",
    ...(req.release?.rollbackOf !== undefined && { rollback_of: req.release.rollbackOf }),
    network: vars?.network_name ?? config.network,
    services,
  });
}

export interface PlanReport extends DeployReport {
  plan: PlanSummary;
  /** Deployed services the repos file no longer lists: a deploy removes them. */
  removed: string[];
  /** True when nothing could be prepared and nothing was deployed: terraform did not run. */
  skipped: boolean;
}

export async function planDeploy(
  config: Config,
  req: DeployRequest,
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
  stages: Stages = realStages,
): Promise<PlanReport> {
  if (req.services.length === 0) throw new UsageError("nothing to plan: the service list is empty");
  if (config.target === "swarm")
    // Planning the local module here would describe containers the swarm target never creates.
    throw new UsageError(
      "iac plan does not support the swarm target yet",
      "run `iac plan --target local` for the single-host plan, or `iac deploy --target swarm -v`, which prints terraform's plan for the swarm module before applying it",
    );
  assertUniqueNames(req.services);
  config = await stages.preflight(config, req.project, onEvent);
  return withProjectLock(config, req.project, "plan", async () => {
    const prepared = await prepareAndPlan(config, stages, req, onEvent, signal, undefined, "plan");
    await rm(prepared.plan.planFile, { force: true });
    for (const o of prepared.outcomes)
      if (o.ok) onEvent(stageEvent("done", o.spec.name, prepared.actions.get(o.spec.name)?.text));
    return {
      project: req.project,
      services: prepared.outcomes.map((o) => serviceReport(o, prepared)),
      plan: prepared.plan,
      removed: prepared.removed,
      skipped: prepared.skipped,
      ...(prepared.terraformSkipped && { terraformSkipped: true }),
    };
  });
}

/**
 * The process limit of each app container. The Docker provider has no pids_limit, so it is
 * set with `docker update` after every apply (it survives restarts; a recreated container
 * gets it again on this same step).
 */
async function applyPidsLimits(
  config: Config,
  project: string,
  dir: string,
  onEvent: EventSink,
): Promise<void> {
  const vars = await readStackVars(dir);
  if (!vars) return;
  const docker = dockerClient(config);
  for (const [name, svc] of Object.entries(vars.services)) {
    const pids = svc.pids ?? DEFAULT_RESOURCES.pids;
    try {
      await docker.getContainer(`${project}-${name}`).update({ PidsLimit: pids });
    } catch (err) {
      onEvent(
        logEvent(
          "terraform",
          `warning: cannot set the pids limit of ${project}-${name}: ${errorMessage(err)}`,
          name,
        ),
      );
    }
  }
}
