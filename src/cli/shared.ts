// Options and helpers shared by CLI commands.
import { Option, type Command } from "commander";
import { loadSystemConfig, type Config } from "../kernel/config.js";
import { UsageError } from "../kernel/errors.js";

export type OutputFormat = "text" | "json";

export function outputOption(): Option {
  return new Option("-o, --output <format>", "output format")
    .choices(["text", "json"])
    .default("text");
}

export function projectOption(): Option {
  return new Option("-p, --project <name>", "project name (default: $IAC_PROJECT or 'iac')");
}

/** Loads config: CLI flags, then the environment, ./.env, the bootstrap record, defaults. */
export function configFromFlags(flags: {
  project?: string;
  sidecar?: string;
  network?: string;
  target?: string;
}): Config {
  return loadSystemConfig({
    IAC_PROJECT: flags.project,
    IAC_SIDECAR: flags.sidecar,
    IAC_NETWORK: flags.network,
    IAC_TARGET: flags.target,
  });
}

export function targetOption(): Option {
  return new Option(
    "--target <target>",
    "local (one Docker host) or swarm (DOCKER_HOST = a Swarm manager); default: $IAC_TARGET or local",
  ).choices(["local", "swarm"]);
}

export function requireFile(file: string | undefined, command: Command): string {
  if (!file)
    throw new UsageError(
      `${command.name()}: --file is required`,
      "e.g. iac " + command.name() + " --file repos.yaml",
    );
  return file;
}

/** One JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Human progress goes to stderr so stdout stays machine-readable. */
export function progress(line: string): void {
  process.stderr.write(line + "\n");
}
