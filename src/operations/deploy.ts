// The pipeline: repos -> fetch -> detect -> build -> certs/envoy -> tfvars -> one terraform
// apply -> health in parallel. One service failing is reported and never stops the others.
// `plan` shares everything up to `terraform plan` and never applies.
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { UIDS } from "../kernel/contract.js";
import { waitForServing } from "../runtime/client.js";
import { HealthStatus_Status } from "../gen/controlplane.js";
import { buildImage } from "../image/build.js";
import { writeEnvoyConfig } from "../mesh/envoy.js";
import { detectEntrypoint } from "../detect/entrypoint.js";
import { UsageError, errorMessage, formatError } from "../kernel/errors.js";
import { type EventSink, logEvent, noopSink, stageEvent } from "../kernel/events.js";
import { fetchSource } from "../source/fetch.js";
import { mapLimit } from "../platform/limit.js";
import { ensureServiceCert } from "../mesh/pki.js";
import { assignPorts } from "../stack/ports.js";
import {
  type StackService,
  projectDir,
  readStackVars,
  stackVars,
  writeStackVars,
} from "../stack/tfvars.js";
import * as tf from "../stack/terraform.js";
import type { ServiceSpec } from "../kernel/types.js";
import { assertNetworkUsable, assertUniqueNames, resolveImages } from "./preflight.js";
import { controlPlaneCerts, withProjectLock } from "./project.js";
import { statusName } from "./status.js";

export interface ServiceReport {
  name: string;
  slug: string;
  commit?: string;
  entrypoint?: { kind: string; argv: string[]; rule: string };
  image?: string;
  status: "SERVING" | "NOT_SERVING" | "FAILED";
  port?: number;
  error?: string;
}

export interface DeployReport {
  project: string;
  services: ServiceReport[];
  /** What terraform did: false when the plan had no changes. */
  applied?: boolean;
  containersRecreated?: string[];
}
export interface DeployRequest {
  project: string;
  services: ServiceSpec[];
}

interface Prepared {
  report: ServiceReport;
  stack?: StackService;
  /** The service's cert files (their hash, with the Envoy config's, is config_hash). */
  certFiles?: string[];
}
/** fetch -> detect -> build -> certs for one service; never throws. */
async function prepareService(
  config: Config,
  project: string,
  spec: ServiceSpec,
  onEvent: EventSink,
  signal?: AbortSignal,
): Promise<Prepared> {
  const report: ServiceReport = { name: spec.name, slug: spec.slug.raw, status: "FAILED" };
  try {
    onEvent(stageEvent("fetch", spec.name));
    const source = await fetchSource(spec.slug, { config, service: spec.name, onEvent, signal });
    report.commit = source.commit;
    onEvent(stageEvent("detect", spec.name, `commit ${source.commit.slice(0, 12)}`));
    const entrypoint = await detectEntrypoint(source, spec.entrypoint);
    report.entrypoint = { kind: entrypoint.kind, argv: entrypoint.argv, rule: entrypoint.rule };
    onEvent(stageEvent("build", spec.name, `${entrypoint.kind}: ${entrypoint.argv.join(" ")}`));
    const image = await buildImage({
      config,
      service: spec.name,
      slug: spec.slug,
      source,
      entrypoint,
      onEvent,
      signal,
    });
    report.image = image.tag;
    onEvent(
      stageEvent("certs", spec.name, image.built ? `built ${image.tag}` : `reused ${image.tag}`),
    );
    const certs = await ensureServiceCert({
      secretsDir: config.secretsDir,
      project,
      network: config.network,
      service: spec.name,
      validityDays: config.certValidityDays,
      // the uid that reads the key: the Envoy image's user, or the app image's runner user
      ownerUid: config.sidecar === "envoy" ? UIDS.envoy : UIDS.app,
    });
    return {
      report,
      certFiles: [certs.certFile, certs.caFile],
      stack: {
        image: image.tag,
        slug: spec.slug.raw,
        commit: source.commit,
        host_port: 0,
        cert_dir: path.dirname(certs.certFile),
        envoy_config: "", // written once the stack's members are known
        env: spec.env,
        port: spec.port ?? 0,
        config_hash: "",
      },
    };
  } catch (err) {
    report.error = formatError(err);
    onEvent(stageEvent("failed", spec.name, errorMessage(err).split("\n")[0]));
    return { report };
  }
}

async function mountedFilesHash(files: string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const f of files) hash.update(f ? await readFile(f) : "").update("\0");
  return hash.digest("hex").slice(0, 16);
}
export interface PrepareResult {
  dir: string;
  reports: ServiceReport[];
  plan: tf.PlanSummary;
  /** True when terraform was not run at all (nothing could be prepared, nothing deployed before). */
  skipped: boolean;
}

/**
 * Everything up to and including `terraform plan`; returns with the lock still held by the
 * caller. Shared by `deploy` (which applies) and `plan` (which stops there).
 */
async function prepareAndPlan(
  config: Config,
  req: DeployRequest,
  onEvent: EventSink,
  signal?: AbortSignal,
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

  const prepared = await mapLimit(req.services, config.concurrency, (spec) =>
    prepareService(config, project, spec, onEvent, signal),
  );

  // A service that failed now keeps its previously applied definition (if any), so one bad
  // repo never takes down what was running.
  const previous = await readStackVars(dir);
  const stack: Record<string, StackService> = {};
  for (const p of prepared) {
    if (p.stack) stack[p.report.name] = p.stack;
    else if (previous?.services[p.report.name]) {
      stack[p.report.name] = previous.services[p.report.name]!;
      p.report.error += " (kept the previously deployed version)";
    }
  }
  // Sidecar configs once the stack's members are known: a repo that failed (and never ran) is
  // no peer, so adding it to the file never changes (and restarts) the others' sidecars.
  const members = Object.keys(stack);
  for (const p of prepared) {
    if (!p.stack) continue;
    const name = p.report.name;
    p.stack.envoy_config =
      config.sidecar === "envoy"
        ? await writeEnvoyConfig(config.stateDir, {
            project,
            service: name,
            network: config.network,
            port: stack[name]!.port || undefined,
            peers: members
              .filter((n) => n !== name)
              .map((n) => ({ name: n, port: stack[n]!.port || undefined })),
          })
        : "";
    p.stack.config_hash = await mountedFilesHash([...(p.certFiles ?? []), p.stack.envoy_config]);
  }
  if (Object.keys(stack).length === 0 && !previous) {
    // Nothing could be prepared and nothing ran before: leave no state behind.
    onEvent(stageEvent("plan", undefined, "nothing to apply: no service could be prepared"));
    const planFile = path.join(dir, "tfplan");
    const empty = {
      changes: false,
      planFile,
      add: 0,
      change: 0,
      destroy: 0,
      containersRecreated: [],
    };
    return { dir, reports: prepared.map((p) => p.report), plan: empty, skipped: true };
  }
  const ports = await assignPorts(path.join(dir, "ports.json"), Object.keys(stack));
  for (const [name, svc] of Object.entries(stack)) svc.host_port = ports[name]!;
  for (const p of prepared) p.report.port = stack[p.report.name]?.host_port;

  await writeStackVars(dir, stackVars(config, project, stack));
  const run: tf.TerraformRun = {
    config,
    dir,
    signal,
    onLine: (line) => onEvent(logEvent("terraform", line)),
  };
  onEvent(stageEvent("plan", undefined, `terraform plan (${Object.keys(stack).length} services)`));
  await tf.init(run);
  const plan = await tf.plan(run);
  return { dir, reports: prepared.map((p) => p.report), plan, skipped: false };
}
export async function deploy(
  config: Config,
  req: DeployRequest,
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
): Promise<DeployReport> {
  if (req.services.length === 0)
    throw new UsageError("nothing to deploy: the service list is empty");
  assertUniqueNames(req.services);
  await assertNetworkUsable(config, req.project);
  config = await resolveImages(config, onEvent);
  const cpCerts = await controlPlaneCerts(config);

  const result = await withProjectLock(config, req.project, "deploy", async (dir) => {
    const { reports, plan, skipped } = await prepareAndPlan(config, req, onEvent, signal);
    if (skipped) return { reports, plan };
    const run: tf.TerraformRun = {
      config,
      dir,
      signal,
      onLine: (line) => onEvent(logEvent("terraform", line)),
    };
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
    return { reports, plan };
  });

  const reports = result.reports;
  await Promise.all(
    reports.map(async (r) => {
      // Not built this time (it stays FAILED, even if a previous version still runs).
      if (r.port === undefined || r.image === undefined) return;
      onEvent(stageEvent("health", r.name, `gRPC HealthCheck via 127.0.0.1:${r.port} (mTLS)`));
      try {
        const status = await waitForServing(
          { host: "127.0.0.1", port: r.port, serverName: r.name },
          cpCerts,
          { deadlineMs: config.healthTimeoutMs },
        );
        const serving = status.status === HealthStatus_Status.SERVING;
        r.status = serving ? "SERVING" : "NOT_SERVING";
        if (!serving) r.error = status.message || `health status ${statusName(status)}`;
        onEvent(stageEvent(serving ? "done" : "failed", r.name, r.status));
      } catch (err) {
        r.status = "NOT_SERVING";
        r.error = errorMessage(err);
        onEvent(stageEvent("failed", r.name, r.error));
      }
    }),
  );

  const report: DeployReport = {
    project: req.project,
    services: reports,
    applied: result.plan.changes,
    containersRecreated: result.plan.containersRecreated,
  };
  onEvent({ type: "result", ts: new Date().toISOString(), result: report });
  return report;
}

export async function planDeploy(
  config: Config,
  req: DeployRequest,
  onEvent: EventSink = noopSink,
): Promise<DeployReport & { plan: tf.PlanSummary }> {
  if (req.services.length === 0) throw new UsageError("nothing to plan: the service list is empty");
  assertUniqueNames(req.services);
  await assertNetworkUsable(config, req.project);
  config = await resolveImages(config, onEvent);
  return withProjectLock(config, req.project, "plan", async () => {
    const { reports, plan } = await prepareAndPlan(config, req, onEvent);
    await rm(plan.planFile, { force: true });
    for (const r of reports) if (!r.error) r.status = "NOT_SERVING";
    return { project: req.project, services: reports, plan };
  });
}
