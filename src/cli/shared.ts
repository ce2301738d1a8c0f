// Options and helpers shared by CLI commands. One meaning per flag letter across commands:
// -f/--file (a repos file; `-` reads stdin), -p/--project, -o/--output, -v/--verbose, -n/--tail,
// -y/--yes. --follow has no short form anywhere.
// Startup (issue 14): `iac --help` and `--version` load only commander and the command files;
// what a command needs beyond its options (config with zod, the repos file parser, operations)
// is imported when its action runs, so these helpers are async where they load something.
import { existsSync } from "node:fs";
import path from "node:path";
import { Option, type Command } from "commander";
import type { Config } from "../kernel/config.js";
import { UsageError } from "../kernel/errors.js";
import type { EventSink } from "../kernel/events.js";
import type { ServiceSpec } from "../kernel/types.js";
import { migrateLegacyState, migrationMessage } from "../stack/state-dir.js";
import { ProgressView } from "./progress.js";
import { useColor } from "./style.js";
import { RunLog } from "./runlog.js";
import { installInterrupts } from "../platform/interrupt.js";

export type OutputFormat = "text" | "json";

export function outputOption(): Option {
  return new Option("-o, --output <format>", "output format")
    .choices(["text", "json"])
    .default("text");
}

export function projectOption(): Option {
  return new Option("-p, --project <name>", "project name (default: $IAC_PROJECT or 'iac')");
}

export function fileOption(): Option {
  return new Option(
    "-f, --file <path>",
    "repos file, YAML or JSON (default: ./repos.yaml, repos.yml or repos.json); - reads stdin",
  );
}

/**
 * Loads config (CLI flags, then the environment, ./.env, the bootstrap record, defaults), and
 * moves a legacy ./.iac state into the state directory (once, with a message on stderr).
 */
export async function configFromFlags(flags: {
  project?: string;
  sidecar?: string;
  network?: string;
  target?: string;
}): Promise<Config> {
  const { loadSystemConfig } = await import("../kernel/config.js");
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
      `pass one: iac ${command.name()} --file path/to/repos.yaml (or --file - to read stdin)`,
    );
  say(`reading ${found} (no --file given)`);
  return path.join(cwd, found);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The repos file's services; `-` reads the file from stdin (paths relative to the cwd). */
export async function readRepos(file: string, maxServices?: number): Promise<ServiceSpec[]> {
  const { loadReposFile, parseReposText, parseServiceList } = await import("../intake/repofile.js");
  if (file !== "-") return loadReposFile(file, { maxServices });
  if (process.stdin.isTTY)
    throw new UsageError(
      "--file - reads the repos file from stdin, but stdin is a terminal",
      "pipe it in, e.g. cat repos.yaml | iac deploy --file -",
    );
  const text = await readStdin();
  return parseServiceList(parseReposText(text, "stdin"), "stdin", process.cwd(), { maxServices });
}

/** One JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Human progress goes to stderr so stdout stays machine-readable. */
export function progress(line: string): void {
  process.stderr.write(line + "\n");
}

/** The global --no-color flag (commander's `--no-color` sets color=false). */
export async function colorFor(cmd: Command, stream: { isTTY?: boolean }): Promise<boolean> {
  const { noColorEnv } = await import("../kernel/config.js");
  const flags = cmd.optsWithGlobals<{ color?: boolean }>();
  return useColor(stream, flags, noColorEnv());
}

export interface Progress {
  sink: EventSink;
  stop: () => void;
  /** The full log of this run (every build/terraform line), kept under the state directory. */
  log?: RunLog;
}

/**
 * Progress on stderr (a live view on a TTY, quiet lines otherwise); with --output json
 * --follow, NDJSON events on stdout instead. Every event also goes to the run's log file.
 */
export async function progressFor(
  cmd: Command,
  flags: { output: OutputFormat; follow?: boolean; verbose?: boolean },
  log?: RunLog,
): Promise<Progress> {
  if (flags.output === "json" && flags.follow) {
    return {
      sink: (e) => {
        log?.sink(e);
        process.stdout.write(JSON.stringify(e) + "\n");
      },
      stop: () => log?.close(),
      log,
    };
  }
  const view = new ProgressView({
    tty: Boolean(process.stderr.isTTY),
    verbose: Boolean(flags.verbose),
    color: await colorFor(cmd, process.stderr),
  });
  return {
    sink: (e) => {
      log?.sink(e);
      view.sink(e);
    },
    stop: () => {
      view.stop();
      log?.close();
    },
    log,
  };
}

/**
 * Runs `fn` with the process's interrupts (platform/interrupt.ts): Ctrl-C or SIGTERM abort
 * `signal` (every wait stops within a second), a second one aborts `hard` (terraform too).
 */
export async function withCancel<T>(
  fn: (signal: AbortSignal, hard: AbortSignal) => Promise<T>,
): Promise<T> {
  const interrupts = installInterrupts((msg) => process.stderr.write(`iac: ${msg}\n`));
  try {
    return await fn(interrupts.signal, interrupts.hard);
  } finally {
    interrupts.dispose();
  }
}

/** The user cancelled: exit 130 like a shell does for SIGINT. */
export class CancelledError extends Error {
  override name = "CancelledError";
  constructor() {
    super("cancelled");
  }
}
