// Runs terraform (init / plan / apply / destroy / output) in a project's working directory,
// streaming its output line by line. argv arrays only; no shell.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Config } from "../kernel/config.js";
import { childEnv } from "../kernel/config.js";
import { IacError, ToolError } from "../kernel/errors.js";

export class TerraformError extends IacError {
  override name = "TerraformError";
}

export interface TerraformRun {
  config: Config;
  /** The project's working dir: .tf copies, tfvars, state. */
  dir: string;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PlanSummary {
  changes: boolean;
  planFile: string;
  add: number;
  change: number;
  destroy: number;
  /** Addresses of containers the plan would delete or replace. */
  containersRecreated: string[];
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
  opts: { capture?: boolean; okCodes?: number[] } = {},
): Promise<{ code: number; stdout: string; tail: string[] }> {
  const okCodes = opts.okCodes ?? [0];
  const bin = ctx.config.terraform.bin;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...args], {
      cwd: ctx.dir,
      env: tfEnv(ctx.config, ctx.dir),
      stdio: ["ignore", "pipe", "pipe"],
      signal: ctx.signal,
      killSignal: "SIGINT", // terraform stops gracefully and releases its state lock on SIGINT
    });
    let stdout = "";
    const tail: string[] = [];
    const onLine = (line: string) => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      ctx.onLine?.(line);
    };
    if (opts.capture) child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    else createInterface({ input: child.stdout }).on("line", onLine);
    createInterface({ input: child.stderr }).on("line", onLine);
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") {
        reject(
          new ToolError(
            `terraform not found (tried '${bin}')`,
            "run `make bootstrap` (uses an installed terraform or builds OpenTofu from the Go module proxy), or set IAC_TERRAFORM_BIN",
          ),
        );
      } else reject(err);
    });
    child.on("close", (code) => {
      const exit = code ?? 1;
      if (okCodes.includes(exit)) return resolve({ code: exit, stdout, tail });
      const text = tail.join("\n");
      const providerMissing =
        !LOCK_CHECKSUM_MISMATCH.test(text) &&
        /registry\.terraform\.io\/kreuzwerker\/docker|Failed to query available provider packages|provider registry/i.test(
          text,
        ) &&
        args[0] === "init";
      reject(
        providerMissing
          ? new ToolError(
              `terraform init could not find the kreuzwerker/docker provider:\n${text}`,
              PROVIDER_HINT,
            )
          : new TerraformError(
              `terraform ${args[0]} failed (exit ${exit}):\n${tail.slice(-15).join("\n")}`,
            ),
      );
    });
  });
}

export async function terraformVersion(config: Config): Promise<string> {
  const { stdout } = await run({ config, dir: process.cwd() }, ["version", "-json"], {
    capture: true,
  });
  return (JSON.parse(stdout) as { terraform_version: string }).terraform_version;
}

export async function init(ctx: TerraformRun): Promise<void> {
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

/** Plans into <dir>/tfplan; `changes` is false when terraform reports no changes. */
export async function plan(
  ctx: TerraformRun,
  opts: { destroy?: boolean } = {},
): Promise<PlanSummary> {
  const planFile = path.join(ctx.dir, "tfplan");
  const args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", `-out=${planFile}`];
  if (opts.destroy) args.push("-destroy");
  const { code } = await run(ctx, args, { okCodes: [0, 2] });
  const summary: PlanSummary = {
    changes: code === 2,
    planFile,
    add: 0,
    change: 0,
    destroy: 0,
    containersRecreated: [],
  };
  if (!summary.changes) return summary;
  const { stdout } = await run(ctx, ["show", "-json", "-no-color", planFile], { capture: true });
  const doc = JSON.parse(stdout) as {
    resource_changes?: { address: string; type: string; change: { actions: string[] } }[];
  };
  for (const rc of doc.resource_changes ?? []) {
    const actions = rc.change.actions;
    if (actions.includes("create")) summary.add++;
    if (actions.includes("update")) summary.change++;
    if (actions.includes("delete")) summary.destroy++;
    if (rc.type === "docker_container" && actions.includes("delete")) {
      summary.containersRecreated.push(rc.address);
    }
  }
  return summary;
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
