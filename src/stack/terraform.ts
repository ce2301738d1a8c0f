// Runs terraform (init / plan / apply / destroy / output) in a project's working directory,
// streaming its output line by line. argv arrays only; no shell.
import { existsSync, readFileSync } from "node:fs";
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { childEnv } from "../kernel/config.js";
import { IacError, ToolError } from "../kernel/errors.js";
import { type ProcessResult, runProcess } from "../platform/exec.js";
import { InterruptedError, abortReason } from "../platform/interrupt.js";

export class TerraformError extends IacError {
  override name = "TerraformError";
}

export interface TerraformRun {
  config: Config;
  /** The project's working dir: .tf copies, tfvars, state. */
  dir: string;
  onLine?: (line: string) => void;
  /** Interrupt: terraform gets SIGINT (it stops cleanly, saving its state) and is waited for. */
  signal?: AbortSignal;
  /** Second interrupt: terraform gets SIGKILL. */
  hardSignal?: AbortSignal;
}

export interface PlanSummary {
  changes: boolean;
  planFile: string;
  add: number;
  change: number;
  destroy: number;
  /** Addresses of containers the plan would delete or replace. */
  containersRecreated: string[];
  /** Every resource the plan touches: address (e.g. docker_container.app["api"]) and actions. */
  resources?: { address: string; actions: string[] }[];
}

const PROVIDER_HINT =
  "run `make bootstrap` (builds kreuzwerker/docker into a local mirror and writes its CLI config), " +
  "or point IAC_TF_CLI_CONFIG at a terraformrc whose provider_installation finds it";

/** terraform init's complaint when the provider binary differs from the lock file's checksums. */
const LOCK_CHECKSUM_MISMATCH = /doesn't match any of the\s+checksums/;

function tfEnv(config: Config, dir: string): Record<string, string> {
  const env: Record<string, string> = {
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    TF_DATA_DIR: path.join(dir, ".terraform"),
    CHECKPOINT_DISABLE: "1",
  };
  if (config.terraform.cliConfig) env.TF_CLI_CONFIG_FILE = config.terraform.cliConfig;
  return childEnv(env);
}

async function run(
  ctx: TerraformRun,
  args: string[],
  opts: {
    capture?: boolean;
    okCodes?: number[];
    mapLine?: (line: string) => string | undefined;
  } = {},
): Promise<{ code: number; stdout: string; tail: string[] }> {
  const okCodes = opts.okCodes ?? [0];
  const bin = ctx.config.terraform.bin;
  ctx.signal?.throwIfAborted();
  const what = `terraform ${args[0]}`;
  let res: ProcessResult;
  try {
    // Its own process group: a Ctrl-C on the terminal reaches iac only, which forwards exactly
    // one SIGINT (two would make terraform exit at once, without saving its state).
    res = await runProcess([bin, ...args], {
      cwd: ctx.dir,
      env: tfEnv(ctx.config, ctx.dir),
      signal: ctx.signal,
      abortWith: "SIGINT",
      hardSignal: ctx.hardSignal,
      onAbortSent: (sig, pid) =>
        ctx.onLine?.(
          sig === "SIGKILL"
            ? `iac: sending SIGKILL to ${what} (pid ${pid})`
            : `iac: sending ${sig} to ${what} (pid ${pid}) and waiting for it to stop`,
        ),
      stdout: opts.capture ? "capture" : "lines",
      onLine: ctx.onLine,
      mapLine: opts.mapLine,
      tailLines: 30,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ToolError(
        `terraform not found (tried '${bin}')`,
        "run `make bootstrap` (uses an installed terraform or builds OpenTofu from the Go module proxy), or set IAC_TERRAFORM_BIN",
      );
    throw err;
  }
  const { code, signal, output: tail } = res;
  if (ctx.signal?.aborted) {
    const how =
      code === null
        ? `terraform was killed by ${signal}`
        : `terraform stopped (exit ${code}) and saved its state`;
    throw new InterruptedError(what, abortReason(ctx.signal), how);
  }
  if (code === null) {
    throw new TerraformError(
      `${what} was killed by ${signal} (not by iac): resources it created may be missing from ` +
        `its state\n${tail.slice(-10).join("\n")}`,
      "run the same command again: resources outside the state are reconciled first",
    );
  }
  if (okCodes.includes(code)) return { code, stdout: res.stdout.toString("utf8"), tail };
  const text = tail.join("\n");
  const providerMissing =
    !LOCK_CHECKSUM_MISMATCH.test(text) &&
    /registry\.terraform\.io\/kreuzwerker\/docker|Failed to query available provider packages|provider registry/i.test(
      text,
    ) &&
    args[0] === "init";
  throw providerMissing
    ? new ToolError(
        `terraform init could not find the kreuzwerker/docker provider:\n${text}`,
        PROVIDER_HINT,
      )
    : new TerraformError(
        `terraform ${args[0]} failed (exit ${code}):\n${tail.slice(-15).join("\n")}`,
      );
}

export async function terraformVersion(config: Config): Promise<string> {
  const { stdout } = await run({ config, dir: process.cwd() }, ["version", "-json"], {
    capture: true,
  });
  return (JSON.parse(stdout) as { terraform_version: string }).terraform_version;
}

/**
 * What `terraform init` depends on: the module's .tf files, the lock file, the CLI config and
 * the binary. When it matches what the last successful init recorded, init is skipped: it is
 * as slow as a plan, and `iac plan` should cost about what `terraform plan` costs.
 */
async function initStamp(ctx: TerraformRun): Promise<string> {
  const h = createHash("sha256");
  h.update(ctx.config.terraform.bin)
    .update("\0")
    .update(ctx.config.terraform.cliConfig ?? "");
  for (const name of (await readdir(ctx.dir)).sort()) {
    if (!name.endsWith(".tf") && name !== ".terraform.lock.hcl") continue;
    h.update("\0")
      .update(name)
      .update("\0")
      .update(await readFile(path.join(ctx.dir, name)));
  }
  return h.digest("hex");
}

export async function init(ctx: TerraformRun): Promise<void> {
  const stampFile = path.join(ctx.dir, ".terraform", "iac-init.stamp");
  const stamp = await initStamp(ctx);
  if ((await readFile(stampFile, "utf8").catch(() => "")) === stamp) return;
  await runInit(ctx);
  await writeFile(stampFile, await initStamp(ctx));
}

async function runInit(ctx: TerraformRun): Promise<void> {
  const args = ["init", "-input=false", "-no-color", "-upgrade=false"];
  try {
    await run(ctx, args);
  } catch (err) {
    // A locally rebuilt provider (same pinned version, new binary) no longer matches the
    // checksums in the project's lock file: record the new one rather than fail forever.
    if (!(err instanceof TerraformError) || !LOCK_CHECKSUM_MISMATCH.test(err.message)) throw err;
    ctx.onLine?.(
      "provider binary changed since the lock file was written (rebuilt locally): re-locking",
    );
    await rm(path.join(ctx.dir, ".terraform.lock.hcl"), { force: true });
    await run(ctx, args);
  }
}

/**
 * Plans into <dir>/tfplan; `changes` is false when terraform reports no changes. `json`: one
 * terraform process instead of two — the plan streams terraform's machine-readable UI
 * (`-json`, documented and versioned: "planned_change" and "change_summary" messages carry the
 * actions; every message's "@message" is what the log shows), so no `terraform show -json`.
 * Without it the log gets terraform's full human diff, and the actions come from `show -json`.
 */
export async function plan(
  ctx: TerraformRun,
  opts: { destroy?: boolean; varFile?: string; json?: boolean } = {},
): Promise<PlanSummary> {
  const planFile = path.join(ctx.dir, "tfplan");
  const args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", `-out=${planFile}`];
  if (opts.destroy) args.push("-destroy");
  // Given after the auto-loaded terraform.tfvars.json, its values win (`iac plan`).
  if (opts.varFile) args.push(`-var-file=${opts.varFile}`);
  if (opts.json) {
    const ui = new JsonUiPlan();
    const { code } = await run(ctx, [...args, "-json"], {
      okCodes: [0, 2],
      mapLine: (line) => ui.line(line),
    });
    return ui.summary(code === 2, planFile);
  }
  const { code } = await run(ctx, args, { okCodes: [0, 2] });
  const summary = emptyPlan(code === 2, planFile);
  if (!summary.changes) return summary;
  const { stdout } = await run(ctx, ["show", "-json", "-no-color", planFile], { capture: true });
  const doc = JSON.parse(stdout) as {
    resource_changes?: { address: string; type: string; change: { actions: string[] } }[];
  };
  for (const rc of doc.resource_changes ?? [])
    tally(summary, { address: rc.address, type: rc.type, actions: rc.change.actions });
  return summary;
}

/** A plan summary before any resource is counted. */
export function emptyPlan(changes: boolean, planFile: string): PlanSummary {
  return {
    changes,
    planFile,
    add: 0,
    change: 0,
    destroy: 0,
    containersRecreated: [],
    resources: [],
  };
}

/** Counts one resource change into the summary (both ways of reading a plan share it). */
function tally(s: PlanSummary, rc: { address: string; type: string; actions: string[] }): void {
  const { actions } = rc;
  // "forget": a resource an older module had, dropped from the state only (a `removed` block).
  if (actions.every((a) => a === "no-op" || a === "read" || a === "forget")) return;
  s.resources!.push({ address: rc.address, actions });
  if (actions.includes("create")) s.add++;
  if (actions.includes("update")) s.change++;
  if (actions.includes("delete")) s.destroy++;
  if (rc.type === "docker_container" && actions.includes("delete"))
    s.containersRecreated.push(rc.address);
}

/** `terraform plan -json` action -> the `actions` list `terraform show -json` gives. */
const UI_ACTIONS: Record<string, string[]> = {
  noop: ["no-op"],
  create: ["create"],
  read: ["read"],
  update: ["update"],
  replace: ["delete", "create"],
  delete: ["delete"],
};

interface UiMessage {
  "@message"?: string;
  type?: string;
  change?: {
    resource?: { addr?: string; resource_type?: string };
    action?: string;
    reason?: string;
  };
  changes?: { add?: number; change?: number; remove?: number };
  diagnostic?: { detail?: string };
}

/** Collects a `terraform plan -json` stream: the planned changes, and each line's text. */
export class JsonUiPlan {
  private readonly changes: { address: string; type: string; actions: string[] }[] = [];
  private counts?: { add: number; change: number; remove: number };

  /** The human text of one line (non-JSON lines, e.g. a crash on stderr, pass as they are). */
  line(raw: string): string | undefined {
    if (!raw.startsWith("{")) return raw;
    let msg: UiMessage;
    try {
      msg = JSON.parse(raw) as UiMessage;
    } catch {
      return raw;
    }
    const c = msg.change;
    if (msg.type === "planned_change" && c?.resource?.addr && c.action) {
      this.changes.push({
        address: c.resource.addr,
        type: c.resource.resource_type ?? "",
        actions: UI_ACTIONS[c.action] ?? [c.action],
      });
    }
    if (msg.type === "change_summary" && msg.changes)
      this.counts = {
        add: msg.changes.add ?? 0,
        change: msg.changes.change ?? 0,
        remove: msg.changes.remove ?? 0,
      };
    const text = msg["@message"] ?? "";
    const detail = msg.diagnostic?.detail?.trim();
    const reason = msg.type === "planned_change" && c?.reason ? ` (${c.reason})` : "";
    return detail ? `${text}: ${detail.replace(/\s*\n\s*/g, " ")}` : text + reason;
  }

  summary(changes: boolean, planFile: string): PlanSummary {
    const s = emptyPlan(changes, planFile);
    if (!changes) return s;
    for (const rc of this.changes) tally(s, rc);
    if (this.counts) {
      s.add = this.counts.add;
      s.change = this.counts.change;
      s.destroy = this.counts.remove;
    }
    return s;
  }
}

export async function apply(ctx: TerraformRun, planFile: string): Promise<void> {
  try {
    await run(ctx, ["apply", "-input=false", "-no-color", "-auto-approve", planFile]);
  } finally {
    await rm(planFile, { force: true });
  }
}

export async function destroy(ctx: TerraformRun): Promise<void> {
  await run(ctx, ["destroy", "-input=false", "-no-color", "-auto-approve"]);
}

export async function output(ctx: TerraformRun): Promise<Record<string, { value: unknown }>> {
  const { stdout } = await run(ctx, ["output", "-json", "-no-color"], { capture: true });
  return JSON.parse(stdout || "{}") as Record<string, { value: unknown }>;
}

export function hasState(dir: string): boolean {
  return existsSync(path.join(dir, "terraform.tfstate"));
}

interface StateDoc {
  resources?: {
    mode: string;
    type: string;
    name: string;
    instances?: { attributes?: { id?: unknown } }[];
  }[];
}

function readStateDoc(dir: string): StateDoc | undefined {
  const file = path.join(dir, "terraform.tfstate");
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as StateDoc;
  } catch {
    return undefined;
  }
}

/**
 * Ids of the objects in the project's state (containers, ...), read from terraform.tfstate as
 * `terraform show` would read it, without starting terraform (~0.3 s on every deploy and plan).
 * Run after checkState, which repairs or sets aside a broken file.
 */
export function stateIds(dir: string): Set<string> {
  const ids = new Set<string>();
  for (const r of readStateDoc(dir)?.resources ?? [])
    for (const i of r.instances ?? [])
      if (typeof i.attributes?.id === "string") ids.add(i.attributes.id);
  return ids;
}

/** Managed resources recorded in the project's state, as `type.name` addresses. */
export function stateAddresses(dir: string): string[] {
  return (readStateDoc(dir)?.resources ?? [])
    .filter((r) => r.mode === "managed")
    .map((r) => `${r.type}.${r.name}`);
}

/** Forgets resources without touching them (`terraform state rm`). */
export async function stateRm(ctx: TerraformRun, addresses: string[]): Promise<void> {
  if (addresses.length === 0) return;
  await run(ctx, ["state", "rm", "-no-color", ...addresses]);
}

/** Imports an existing object into the state (`terraform import ADDRESS ID`). */
export async function importResource(
  ctx: TerraformRun,
  address: string,
  id: string,
): Promise<void> {
  await run(ctx, ["import", "-input=false", "-no-color", address, id]);
}

/**
 * Earlier versions owned the network in the first project's state (`docker_network.mesh`);
 * the module now reads the shared network as a data source. Forget it (it keeps running).
 */
export async function forgetOwnedNetwork(ctx: TerraformRun): Promise<boolean> {
  if (!stateAddresses(ctx.dir).includes("docker_network.mesh")) return false;
  ctx.onLine?.(
    "state: the network is shared now; forgetting docker_network.mesh (it keeps running)",
  );
  await stateRm(ctx, ["docker_network.mesh"]);
  return true;
}
