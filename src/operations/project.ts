// What every operation on a deployed project shares: its lock, its deployed services (from the
// tfvars Terraform last got) and the control plane's client certificate.
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { NotFoundError } from "../kernel/errors.js";
import { acquireLock } from "../platform/lock.js";
import { ensureControlPlaneCert } from "../mesh/pki.js";
import {
  type StackService,
  projectDir,
  readStackVars,
  syncModule,
  tfvarsPath,
} from "../stack/tfvars.js";
import type { CertPaths } from "../kernel/types.js";

export async function controlPlaneCerts(config: Config): Promise<CertPaths> {
  return ensureControlPlaneCert({
    secretsDir: config.secretsDir,
    validityDays: config.certValidityDays,
  });
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
export async function deployedServices(
  config: Config,
  project: string,
): Promise<Record<string, StackService>> {
  const vars = await readStackVars(projectDir(config, project));
  if (!vars) {
    throw new NotFoundError(
      `project '${project}' has no deployed services (${tfvarsPath(projectDir(config, project))} not found)`,
      "deploy it first: iac deploy --file repos.yaml" +
        (project === "iac" ? "" : ` --project ${project}`),
    );
  }
  return vars.services;
}
