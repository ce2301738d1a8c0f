// `iac`: the command-line front end. Each command lives in src/cli/<name>.ts and
// registers itself on the program; this file only wires them and maps errors to exit codes.
import { Command, CommanderError } from "commander";
import { catalogueEntry, formatError } from "../kernel/errors.js";
import { loadConfig } from "../kernel/config.js";
import { explainSystemError } from "../platform/syserror.js";
import { registerDeployCommands } from "./deploy.js";
import { registerImagesCommand } from "./images.js";
import { registerInspectCommand } from "./inspect.js";
import { registerLifecycleCommands } from "./lifecycle.js";
import { registerPkiCommand } from "./pki.js";
import { registerServeCommand } from "./serve.js";
import { stripControls } from "./termtext.js";

export function buildProgram(): Command {
  const program = new Command()
    .name("iac")
    .description(
      "Deploy git repositories (gh:owner/repo#ref) as containers, each with an Envoy sidecar,\n" +
        "declared with Terraform (Docker provider) and health-checked over gRPC with mutual TLS.\n" +
        "Settings come from flags, then the environment, ./.env (see .env.example), what\n" +
        "`make bootstrap` recorded, then defaults.",
    )
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) });
  program.exitOverride();
  registerInspectCommand(program);
  registerDeployCommands(program);
  registerImagesCommand(program);
  registerLifecycleCommands(program);
  registerPkiCommand(program);
  registerServeCommand(program);
  return program;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  return catalogueEntry(err).exitCode;
}

export function reportError(err: unknown): void {
  if (err instanceof CommanderError) return; // commander already printed it
  process.stderr.write(`iac: error: ${stripControls(formatError(err, { indent: "  " }))}\n`);
}

/** DOCKER_HOST as the commands saw it (undefined when unset or the settings are invalid). */
function dockerHostSetting(): string | undefined {
  try {
    return loadConfig().dockerHost;
  } catch {
    return undefined;
  }
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (caught) {
    const err = explainSystemError(caught, dockerHostSetting()) ?? caught;
    reportError(err);
    process.exitCode = exitCodeFor(err);
  }
}

await main(process.argv);
