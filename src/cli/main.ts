// `iac`: the command-line front end. Each command lives in src/cli/<name>.ts and
// registers itself on the program; this file only wires them and maps errors to exit codes:
// 0 ok, 1 a service failed, 2 usage/config/not-found (always `iac: error: …` plus a hint),
// 130 cancelled.
import { Command, CommanderError } from "commander";
import { catalogueEntry } from "../kernel/errors.js";
import { registerCompletionCommand } from "./completion.js";
import { registerDeployCommand } from "./deploy.js";
import { registerDestroyCommand } from "./destroy.js";
import { registerHealthCommand } from "./health.js";
import { registerImagesCommand } from "./images.js";
import { registerInspectCommand } from "./inspect.js";
import { registerLifecycleCommands } from "./lifecycle.js";
import { registerLogsCommand } from "./logs.js";
import { registerPkiCommand } from "./pki.js";
import { registerPlanCommand } from "./plan.js";
import { registerServeCommand } from "./serve.js";
import { CancelledError } from "./shared.js";
import { reportError } from "./report-error.js";

/** Commander's own messages ("error: unknown option '--x'") in the same `iac: error:` form. */
function commanderOutput(str: string, write: (s: string) => void): void {
  write(str.replace(/^error: /, "iac: error: "));
}

export function buildProgram(): Command {
  const program = new Command()
    .name("iac")
    .description(
      "Deploy git repositories (gh:owner/repo#ref) as containers, each with an Envoy sidecar, " +
        "declared with Terraform (Docker provider) and health-checked over gRPC with mutual TLS. " +
        "Settings come from flags, then the environment, ./.env (see .env.example), what " +
        "`make bootstrap` recorded, then defaults.",
    )
    .version("0.1.0")
    .option("--no-color", "no colour (also: NO_COLOR=1); colour is only used on a terminal")
    .showHelpAfterError("  hint: run with --help for usage")
    .configureOutput({ outputError: commanderOutput });
  program.exitOverride();
  registerInspectCommand(program);
  registerPlanCommand(program);
  registerDeployCommand(program);
  registerHealthCommand(program);
  registerLogsCommand(program);
  registerDestroyCommand(program);
  registerImagesCommand(program);
  registerLifecycleCommands(program);
  registerPkiCommand(program);
  registerServeCommand(program);
  registerCompletionCommand(program);
  // Subcommands throw (exit codes are ours) and print errors in the same form.
  for (const cmd of program.commands) {
    cmd.exitOverride();
    cmd.configureOutput({ outputError: commanderOutput });
    cmd.showHelpAfterError(`  hint: run iac ${cmd.name()} --help for usage`);
  }
  return program;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CancelledError) return 130;
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  return catalogueEntry(err).exitCode;
}

/** An OS fault explained with the settings the commands saw (folders, DOCKER_HOST). */
async function explainFault(err: unknown): Promise<unknown> {
  // Loaded only on failure: `iac --help` and `--version` need commander and the command
  // files only (each command imports what it runs when it runs; issue 14).
  const { explainSystemError, explainWithConfig } = await import("../platform/syserror.js");
  const { loadConfig } = await import("../kernel/config.js");
  let config;
  try {
    config = loadConfig();
  } catch {
    return explainSystemError(err) ?? err; // the settings themselves are invalid
  }
  return explainWithConfig(err, config);
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (caught) {
    // --help, --version and usage errors end here too (commander throws): nothing to explain.
    if (caught instanceof CommanderError) {
      reportError(caught);
      process.exitCode = exitCodeFor(caught);
      return;
    }
    const err = await explainFault(caught);
    reportError(err);
    process.exitCode = exitCodeFor(err);
  }
}

await main(process.argv);
