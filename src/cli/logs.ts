// iac logs [SERVICE...]: main()'s output from each runner's buffer. No service = every service
// of the project, merged, each line prefixed with its (coloured) service name.
import type { Command } from "commander";
import { UsageError } from "../kernel/errors.js";
import type { ServiceLogLine } from "../operations/logs.js";
import { WritableFlow } from "./backpressure.js";
import { palette } from "./style.js";
import { stripControls } from "./termtext.js";
import {
  type OutputFormat,
  colorFor,
  configFromFlags,
  outputOption,
  printJson,
  projectOption,
  targetOption,
} from "./shared.js";

/** "90s", "10m", "2h", "1d" ago, or an ISO-8601 time -> epoch ms. */
export function parseSince(value: string, now = Date.now()): number {
  const rel = /^(\d+)(s|m|h|d)$/.exec(value);
  if (rel) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "s"];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new UsageError(
      `--since: '${value}' is neither a duration nor a time`,
      "e.g. --since 10m, --since 2h or --since 2026-01-31T12:00:00Z",
    );
  return t;
}

const PREFIX_COLOURS = ["cyan", "yellow", "green", "red"] as const;

export function registerLogsCommand(program: Command): void {
  program
    .command("logs")
    .description(
      "main()'s output from each runner's buffer (StreamLogs over mTLS); without SERVICE, " +
        "every service of the project merged, each line prefixed with its name",
    )
    .argument("[services...]", "service names (default: all)")
    .addOption(projectOption())
    .addOption(targetOption())
    .option("--follow", "keep streaming new lines (NDJSON with -o json)")
    .option(
      "-n, --tail <lines>",
      "number of recent lines per service to show first (0 = all)",
      "100",
    )
    .option("--since <when>", "only lines newer than a duration (10m, 2h) or an ISO time")
    .option("-t, --timestamps", "prefix each line with its time")
    .addOption(outputOption())
    .action(
      async (
        services: string[],
        flags: {
          project?: string;
          target?: string;
          output: OutputFormat;
          follow?: boolean;
          tail: string;
          since?: string;
          timestamps?: boolean;
        },
        cmd: Command,
      ) => {
        const { streamProjectLogs } = await import("../operations/logs.js");
        const tail = Number(flags.tail);
        if (!Number.isInteger(tail) || tail < 0)
          throw new UsageError(`--tail must be a non-negative integer, got '${flags.tail}'`);
        const since = flags.since === undefined ? undefined : parseSince(flags.since);
        const config = await configFromFlags(flags);
        const c = palette(await colorFor(cmd, process.stdout));
        const follow = Boolean(flags.follow);
        const json = flags.output === "json";
        const many = services.length !== 1;
        const width = Math.max(0, ...services.map((s) => s.length));
        let nameWidth = width;
        const colourOf = new Map<string, (s: string) => string>();
        const prefix = (name: string) => {
          if (!many) return "";
          if (!colourOf.has(name))
            colourOf.set(name, c[PREFIX_COLOURS[colourOf.size % PREFIX_COLOURS.length]!]);
          nameWidth = Math.max(nameWidth, name.length);
          return colourOf.get(name)!(`${name.padEnd(nameWidth)} |`) + " ";
        };
        const text = (l: ServiceLogLine) =>
          prefix(l.service) +
          (flags.timestamps ? c.dim(l.ts) + " " : "") +
          // The app's bytes, minus anything that would drive the terminal.
          stripControls(l.msg) +
          "\n";
        const collected: ServiceLogLine[] = [];
        const onLine = (l: ServiceLogLine) => {
          if (since !== undefined && Date.parse(l.ts) < since) return;
          if (!follow) collected.push(l);
          else if (json) process.stdout.write(JSON.stringify(l) + "\n");
          else process.stdout.write(text(l));
        };
        const abort = new AbortController();
        let interrupted = false;
        const stop = () => {
          interrupted = true;
          abort.abort();
        };
        // The reader went away (`| head`): stop quietly, like a pipeline expects.
        const gone = (err: NodeJS.ErrnoException) => {
          if (err.code !== "EPIPE") throw err;
          abort.abort();
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        process.stdout.on("error", gone);
        let names: string[];
        try {
          names = await streamProjectLogs(
            config,
            config.project,
            services,
            {
              tail: since !== undefined && tail === 100 ? 0 : tail,
              follow,
              // Backpressure: a slow reader pauses the streams instead of growing this process.
              ...(follow && { flow: new WritableFlow(process.stdout) }),
            },
            onLine,
            abort.signal,
          );
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        }
        if (abort.signal.aborted) {
          // Ctrl-C ends it now, also when stdout still holds lines a stalled reader never takes.
          process.exitCode = interrupted ? 130 : 0;
          setTimeout(() => process.exit(), 200).unref();
          return;
        }
        process.stdout.off("error", gone);
        if (follow) return;
        // Without --follow: one document (json) or the merged lines in time order.
        collected.sort((a, b) => a.ts.localeCompare(b.ts));
        if (json) printJson({ project: config.project, services: names, lines: collected });
        else {
          nameWidth = Math.max(...names.map((n) => n.length));
          for (const l of collected) process.stdout.write(text(l));
        }
      },
    );
}
