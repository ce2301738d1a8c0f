// Options and helpers shared by CLI commands.
import { existsSync } from "node:fs";
import path from "node:path";
import { Option } from "commander";
import { loadSystemConfig, type Config } from "../kernel/config.js";
import { UsageError } from "../kernel/errors.js";
import { migrateLegacyState, migrationMessage } from "../stack/state-dir.js";

export type OutputFormat = "text" | "json";

export function outputOption(): Option {
  return new Option("-o, --output <format>", "output format")
    .choices(["text", "json"])
    .default("text");
}

export function projectOption(): Option {
  return new Option("-p, --project <name>", "project name (default: $IAC_PROJECT or 'iac')");
}

/**
 * Loads config (CLI flags, then the environment, ./.env, the bootstrap record, defaults), and
 * moves a legacy ./.iac state into the state directory (once, with a message on stderr).
 */
export function configFromFlags(flags: {
  project?: string;
  sidecar?: string;
  network?: string;
  target?: string;
}): Config {
  const config = loadSystemConfig({
    IAC_PROJECT: flags.project,
    IAC_SIDECAR: flags.sidecar,
    IAC_NETWORK: flags.network,
    IAC_TARGET: flags.target,
  });
  for (const m of migrateLegacyState(config)) progress(migrationMessage(m));
  return config;
}

export function targetOption(): Option {
  return new Option(
    "--target <target>",
    "local (one Docker host) or swarm (DOCKER_HOST = a Swarm manager); default: $IAC_TARGET or local",
  ).choices(["local", "swarm"]);
}

/** Repos files looked for, in order, when --file is omitted. */
export const DEFAULT_REPOS_FILES = ["repos.yaml", "repos.yml", "repos.json"];

/** --file, else the first of DEFAULT_REPOS_FILES in `cwd`; says which file it read. */
export function reposFile(
  file: string | undefined,
  command: { name(): string },
  cwd: string = process.cwd(),
  say: (line: string) => void = progress,
): string {
  if (file) return file;
  const found = DEFAULT_REPOS_FILES.find((name) => existsSync(path.join(cwd, name)));
  if (!found)
    throw new UsageError(
      `${command.name()}: no --file given and none of ${DEFAULT_REPOS_FILES.join(", ")} in ${cwd}`,
      `pass one: iac ${command.name()} --file path/to/repos.yaml`,
    );
  say(`reading ${found} (no --file given)`);
  return path.join(cwd, found);
}

/** One JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Human progress goes to stderr so stdout stays machine-readable. */
export function progress(line: string): void {
  process.stderr.write(line + "\n");
}
