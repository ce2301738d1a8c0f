// The no-op fast path of `deploy` (issue 14): when the desired stack hashes to what the last
// successful apply recorded, the state file is the one that apply left, and one Docker list
// call shows every container of the project running as applied (same id, image id and
// config-hash label, nothing extra), Terraform is skipped and the deploy goes straight to the
// health checks. Anything else (a container removed, stopped, replaced, relabelled, an extra
// one, a changed stack, module, provider lock or state) runs the full plan/apply.
import { createHash } from "node:crypto";
import { readFile, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { writeFileAtomic } from "../platform/fs.js";
import { INFRA_DIR } from "../stack/tfvars.js";

/** What the deploy needs to know of a container (one Docker list call gives all of them). */
export interface ContainerState {
  name: string;
  id: string;
  imageId: string;
  /** Docker's State: running, exited, restarting, ... */
  state: string;
  labels: Record<string, string>;
}

export interface AppliedRecord {
  version: 1;
  /** desiredStackHash() of what was applied. */
  stack: string;
  /** sha256 of terraform.tfstate right after the apply. */
  state: string;
  containers: { name: string; id: string; imageId: string; configHash: string }[];
  at: string;
}

const RECORD = "applied.json";
const CONFIG_HASH_LABEL = "io.iac.config-hash";

function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(p);
    h.update("\0");
  }
  return h.digest("hex");
}

async function readOr(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * The desired stack: the tfvars (services, images, ports, rendered-config and cert hashes,
 * sidecar mode, ...), the module's .tf files, the provider lock and which terraform runs it.
 */
export async function desiredStackHash(
  config: Config,
  dir: string,
  varsJson: string,
  moduleDir: string = INFRA_DIR,
): Promise<string> {
  const parts: (string | Buffer)[] = [
    "iac-stack-v1",
    varsJson,
    config.terraform.bin,
    config.terraform.cliConfig ?? "",
  ];
  for (const name of (await readdir(moduleDir)).filter((n) => n.endsWith(".tf")).sort()) {
    parts.push(name, await readFile(path.join(moduleDir, name)));
  }
  parts.push((await readOr(path.join(dir, ".terraform.lock.hcl"))) ?? "no lock");
  return sha256(...parts);
}

async function stateHash(dir: string): Promise<string | undefined> {
  const state = await readOr(path.join(dir, "terraform.tfstate"));
  return state ? sha256(state) : undefined;
}

export async function readApplied(dir: string): Promise<AppliedRecord | undefined> {
  const raw = await readOr(path.join(dir, RECORD));
  if (!raw) return undefined;
  try {
    const rec = JSON.parse(raw.toString("utf8")) as AppliedRecord;
    return rec.version === 1 && Array.isArray(rec.containers) ? rec : undefined;
  } catch {
    return undefined; // a torn or foreign file: the full path decides, and rewrites it
  }
}

/** Before an apply: whatever happens next, the old record no longer describes the stack. */
export async function clearApplied(dir: string): Promise<void> {
  await rm(path.join(dir, RECORD), { force: true });
}

/** The containers a stack must have: `<project>-<service>` (+ `-envoy` with the sidecar). */
export function expectedContainers(project: string, services: string[], sidecar: string): string[] {
  return services
    .flatMap((s) => [`${project}-${s}`, ...(sidecar === "envoy" ? [`${project}-${s}-envoy`] : [])])
    .sort();
}

/**
 * After a successful apply (or a plan without changes): records the stack hash, the state's
 * hash and the containers as they run now. Nothing is recorded unless every expected
 * container runs (a crash-looping app is checked by the full path next time).
 */
export async function recordApplied(
  dir: string,
  stack: string,
  expected: string[],
  containers: ContainerState[],
): Promise<boolean> {
  const byName = new Map(containers.map((c) => [c.name, c]));
  const rows: AppliedRecord["containers"] = [];
  for (const name of expected) {
    const c = byName.get(name);
    if (!c || c.state !== "running") {
      await clearApplied(dir);
      return false;
    }
    rows.push({
      name,
      id: c.id,
      imageId: c.imageId,
      configHash: c.labels[CONFIG_HASH_LABEL] ?? "",
    });
  }
  const state = await stateHash(dir);
  if (!state) {
    await clearApplied(dir);
    return false;
  }
  const rec: AppliedRecord = {
    version: 1,
    stack,
    state,
    containers: rows,
    at: new Date().toISOString(),
  };
  await writeFileAtomic(path.join(dir, RECORD), JSON.stringify(rec, null, 2) + "\n");
  return true;
}

export type FastPath = { skip: true; reason: string } | { skip: false; reason: string };

/**
 * Whether terraform can be skipped: the record matches the desired stack and the state file,
 * and `containers` (the project's, from one list call) are exactly the recorded ones, running
 * with the recorded id, image id and config-hash label.
 */
export async function noOpFastPath(
  dir: string,
  stack: string,
  containers: ContainerState[],
): Promise<FastPath> {
  const rec = await readApplied(dir);
  if (!rec) return { skip: false, reason: "no record of a previous apply" };
  if (rec.stack !== stack) return { skip: false, reason: "the stack changed since the last apply" };
  if ((await stateHash(dir)) !== rec.state)
    return { skip: false, reason: "terraform.tfstate changed since the last apply" };
  const byName = new Map(containers.map((c) => [c.name, c]));
  for (const want of rec.containers) {
    const c = byName.get(want.name);
    if (!c) return { skip: false, reason: `container ${want.name} is missing` };
    if (c.state !== "running")
      return { skip: false, reason: `container ${want.name} is ${c.state}, not running` };
    if (c.id !== want.id) return { skip: false, reason: `container ${want.name} was replaced` };
    if (c.imageId !== want.imageId)
      return { skip: false, reason: `container ${want.name} runs another image` };
    if ((c.labels[CONFIG_HASH_LABEL] ?? "") !== want.configHash)
      return { skip: false, reason: `container ${want.name} has another ${CONFIG_HASH_LABEL}` };
    byName.delete(want.name);
  }
  const extra = [...byName.keys()].sort();
  if (extra.length)
    return { skip: false, reason: `container(s) not in the last apply: ${extra.join(", ")}` };
  return {
    skip: true,
    reason: `no changes: the stack matches the last apply and its ${rec.containers.length} containers run as applied (terraform skipped)`,
  };
}
