// What every operation on a deployed project shares: its lock, its deployed services (from the
// tfvars Terraform last got) and the control plane's client certificate.
import { userInfo } from "node:os";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { NotFoundError, UsageError } from "../kernel/errors.js";
import { type EventSink, logEvent } from "../kernel/events.js";
import { dockerClient } from "../platform/docker.js";
import { acquireLock } from "../platform/lock.js";
import { ensureControlPlaneCert, readControlPlaneCert } from "../mesh/pki.js";
import {
  type StackService,
  projectDir,
  readStackVars,
  syncModule,
  tfvarsPath,
} from "../stack/tfvars.js";
import type { CertPaths } from "../kernel/types.js";
import { reconcile, runningServices } from "../stack/reconcile.js";
import { checkState, describeCheck } from "../stack/state.js";
import * as tf from "../stack/terraform.js";

export async function controlPlaneCerts(config: Config): Promise<CertPaths> {
  return ensureControlPlaneCert({
    secretsDir: config.secretsDir,
    validityDays: config.certValidityDays,
  });
}
/** The control plane's client cert for commands that only read: used as it is, never written. */
export async function readOnlyControlPlaneCerts(config: Config): Promise<CertPaths> {
  return readControlPlaneCert({ secretsDir: config.secretsDir });
}

export async function withProjectLock<T>(
  config: Config,
  project: string,
  operation: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = projectDir(config, project);
  await syncModule(dir);
  const release = await acquireLock(path.join(dir, ".lock"), operation);
  try {
    return await fn(dir);
  } finally {
    await release();
  }
}
/**
 * The project's services and host ports: from its tfvars, else (state folder lost) read back
 * from the running containers' labels and port bindings.
 */
export async function deployedServices(
  config: Config,
  project: string,
): Promise<Record<string, Pick<StackService, "host_port">>> {
  const vars = await readStackVars(projectDir(config, project));
  if (vars) return vars.services;
  const running = await runningServices(config, project);
  if (Object.keys(running).length > 0) {
    return Object.fromEntries(Object.entries(running).map(([k, port]) => [k, { host_port: port }]));
  }
  throw new NotFoundError(
    `project '${project}' has no deployed services (${tfvarsPath(projectDir(config, project))} not found, ` +
      `no running container labelled io.iac.project=${project})`,
    "deploy it first: iac deploy --file repos.yaml" +
      (project === "iac" ? "" : ` --project ${project}`),
  );
}

/** init, a broken state repaired (named), then resources outside the state reconciled (named). */
export async function prepareState(
  config: Config,
  project: string,
  run: tf.TerraformRun,
  onEvent?: EventSink,
): Promise<void> {
  const say = (line: string) =>
    onEvent ? onEvent(logEvent("pipeline", line)) : run.onLine?.(`iac: ${line}`);
  const note = describeCheck(run.dir, await checkState(run.dir));
  if (note) say(note);
  await tf.init(run);
  await tf.forgetOwnedNetwork(run);
  for (const line of await reconcile(config, project, run)) say(line);
}

/** The principal recorded for a CLI run: `cli:<login name>`. */
export function cliPrincipal(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? "?"}`;
  }
}

/** Names of the containers labelled with `project` on this engine. */
export async function projectContainers(config: Config, project: string): Promise<string[]> {
  const list = await dockerClient(config).listContainers({
    all: true,
    filters: { label: [`io.iac.project=${project}`] },
  });
  return list.map((c) => c.Names[0]?.replace(/^\//, "") ?? c.Id).sort();
}

/**
 * Before Terraform runs: a project with no state at all on this machine (no terraform.tfstate:
 * deployed from another checkout or machine, or by an older version) whose containers run
 * would collide with what Terraform creates. Stop and name the two ways out. A state that
 * exists but is broken or partial (an interrupted apply) is repaired and reconciled instead
 * (prepareState).
 */
export async function assertAdoptable(config: Config, project: string): Promise<void> {
  const dir = projectDir(config, project);
  if (tf.hasState(dir)) return;
  const running = await projectContainers(config, project);
  if (running.length === 0) return;
  const p = project === "iac" ? "" : ` --project ${project}`;
  throw new UsageError(
    `project '${project}' has ${running.length} container(s) on this engine (${running.join(", ")}) ` +
      `but no state on this machine (${dir}): it was deployed from another checkout, ` +
      "another machine or an older version",
    `take it over: iac adopt${p}  (imports the running containers into fresh state), ` +
      `or remove it: iac destroy${p}`,
  );
}
