// Terraform's local state file, guarded: backed up before every apply, checked before every
// operation. A broken file (truncated, half-written) is moved aside and replaced by the newest
// valid backup; with no backup it is left out, and the resources carrying the project's labels
// are reconciled instead (src/reconcile.ts). Either way the output says which happened.
import { copyFile, readFile, rename, stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../platform/fs.js";

export const STATE_FILE = "terraform.tfstate";
/** Ours, taken before every apply (terraform's own terraform.tfstate.backup is used too). */
export const IAC_BACKUP = "terraform.tfstate.iac-backup";
const TF_BACKUP = "terraform.tfstate.backup";

interface StateDoc {
  version: number;
  serial: number;
  resources: unknown[];
}

/** Why a state text is unusable, or undefined when it is a valid v4 state. */
export function stateProblem(text: string): string | undefined {
  if (text.trim() === "") return "it is empty (truncated)";
  let doc: Partial<StateDoc>;
  try {
    doc = JSON.parse(text) as Partial<StateDoc>;
  } catch (err) {
    return `it is not valid JSON (half-written?): ${(err as Error).message}`;
  }
  if (typeof doc !== "object" || doc === null) return "it is not a JSON object";
  if (doc.version !== 4) return `unsupported state version ${String(doc.version)}`;
  if (!Array.isArray(doc.resources)) return "it has no resources list";
  return undefined;
}

async function readValid(file: string): Promise<StateDoc | undefined> {
  try {
    const text = await readFile(file, "utf8");
    return stateProblem(text) ? undefined : (JSON.parse(text) as StateDoc);
  } catch {
    return undefined;
  }
}

export type StateCheck =
  | { kind: "ok" }
  | { kind: "absent" }
  | { kind: "restored"; from: string; movedTo: string; problem: string }
  | { kind: "set-aside"; movedTo: string; problem: string };

/** Checks the state file; repairs it from a backup when broken. */
export async function checkState(dir: string): Promise<StateCheck> {
  const file = path.join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
    throw err;
  }
  const problem = stateProblem(text);
  if (!problem) return { kind: "ok" };
  const movedTo = `${file}.broken-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  await rename(file, movedTo);
  let best: { file: string; serial: number } | undefined;
  for (const name of [IAC_BACKUP, TF_BACKUP]) {
    const candidate = path.join(dir, name);
    const doc = await readValid(candidate);
    if (doc && (!best || doc.serial > best.serial)) best = { file: candidate, serial: doc.serial };
  }
  if (!best) return { kind: "set-aside", movedTo, problem };
  await writeFileAtomic(file, await readFile(best.file), 0o600);
  return { kind: "restored", from: best.file, movedTo, problem };
}

export function describeCheck(dir: string, check: StateCheck): string | undefined {
  const file = path.join(dir, STATE_FILE);
  switch (check.kind) {
    case "restored":
      return (
        `terraform state ${file} was broken (${check.problem}): restored from the backup ` +
        `${check.from}; the broken file is kept as ${check.movedTo}`
      );
    case "set-aside":
      return (
        `terraform state ${file} was broken (${check.problem}) and no valid backup exists: ` +
        `set aside as ${check.movedTo}; rebuilding from the resources labelled with the project`
      );
    default:
      return undefined;
  }
}

/** Copies a valid state to IAC_BACKUP (atomically); a broken one is never copied. */
export async function backupState(dir: string): Promise<boolean> {
  const file = path.join(dir, STATE_FILE);
  const exists = await stat(file).catch(() => undefined);
  if (!exists || !(await readValid(file))) return false;
  const tmp = path.join(dir, `${IAC_BACKUP}.tmp`);
  await copyFile(file, tmp);
  await rename(tmp, path.join(dir, IAC_BACKUP));
  return true;
}
