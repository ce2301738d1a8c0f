// Per-project state lives in one directory independent of the working directory
// ($IAC_STATE_DIR, default $XDG_STATE_HOME/iac-wrapper). Earlier versions kept it in ./.iac of
// the checkout that deployed: the first command run there moves it over, once, and says so.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import type { Config } from "../kernel/config.js";

export interface Migration {
  project: string;
  from: string;
  to: string;
  /** Set when the project was not moved (a state of that name already exists). */
  skipped?: string;
}

function moveDir(from: string, to: string): void {
  mkdirSync(path.dirname(to), { recursive: true, mode: 0o700 });
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    cpSync(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    rmSync(from, { recursive: true, force: true });
  }
}

/** Absolute paths of the old location inside tfvars/ports (rendered configs) now point to the new one. */
function rewritePaths(dir: string, from: string): void {
  for (const name of ["terraform.tfvars.json"]) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    if (text.includes(from)) writeFileSync(file, text.split(from).join(dir), { mode: 0o644 });
  }
}

/**
 * Moves every project of a legacy ./.iac into the state directory (skipping names that already
 * exist there) and removes ./.iac when it is empty. Returns what happened, for the message.
 */
export function migrateLegacyState(
  config: Pick<Config, "stateDir" | "legacyStateDir">,
): Migration[] {
  const legacy = config.legacyStateDir;
  if (path.resolve(legacy) === path.resolve(config.stateDir)) return [];
  let entries: string[];
  try {
    if (!statSync(legacy).isDirectory()) return [];
    entries = readdirSync(legacy);
  } catch {
    return [];
  }
  const done: Migration[] = [];
  for (const project of entries) {
    const from = path.join(legacy, project);
    if (!statSync(from).isDirectory()) continue;
    const to = path.join(config.stateDir, project);
    if (existsSync(to)) {
      done.push({ project, from, to, skipped: `${to} already exists` });
      continue;
    }
    moveDir(from, to);
    rewritePaths(to, from);
    done.push({ project, from, to });
  }
  try {
    rmdirSync(legacy); // only when empty: anything skipped stays for the operator to look at
  } catch {
    /* not empty */
  }
  return done;
}

export function migrationMessage(m: Migration): string {
  return m.skipped
    ? `state: left ${m.from} in place (${m.skipped}); remove it once you no longer need it`
    : `state: moved project '${m.project}' from ${m.from} to ${m.to} (once; the state directory ` +
        `is now independent of the working directory, set IAC_STATE_DIR to choose another)`;
}
