// iac deploy | plan | destroy | health | logs — the orchestration commands.
import { Option, type Command } from "commander";
import { type DeployReport, deploy, planDeploy } from "../operations/deploy.js";
import { destroy } from "../operations/destroy.js";
import { streamLogs } from "../operations/logs.js";
import { health } from "../operations/status.js";
import { UsageError } from "../kernel/errors.js";
import type { DeployEvent } from "../kernel/events.js";
import { ProgressView, table } from "./progress.js";
import { loadReposFile } from "../intake/repofile.js";
import { installInterrupts, type Interrupts } from "../platform/interrupt.js";
import { stripControls } from "./termtext.js";
import {
  configFromFlags,
  outputOption,
  printJson,
  projectOption,
  reposFile,
  targetOption,
} from "./shared.js";

export interface CommonFlags {
  project?: string;
  output: "text" | "json";
  sidecar?: string;
  network?: string;
  target?: string;
  verbose?: boolean;
  follow?: boolean;
}

export function sidecarOption(): Option {
  return new Option(
    "--sidecar <mode>",
    "envoy sidecars or none (default: $IAC_SIDECAR or envoy)",
  ).choices(["envoy", "none"]);
}

export function networkOption(): Option {
  return new Option("--network <name>", "Docker network (default: $IAC_NETWORK or iacnet)");
}

/** Progress on stderr; with --output json --follow, NDJSON events on stdout instead. */
export function progressFor(flags: CommonFlags): {
  sink: (e: DeployEvent) => void;
  stop: () => void;
} {
  if (flags.output === "json" && flags.follow) {
    return { sink: (e) => process.stdout.write(JSON.stringify(e) + "\n"), stop: () => {} };
  }
  const view = new ProgressView({
    tty: Boolean(process.stderr.isTTY),
    verbose: Boolean(flags.verbose),
  });
  return { sink: view.sink, stop: () => view.stop() };
}

/** SIGINT/SIGTERM while `fn` runs: stages stop, terraform is signalled and waited for. */
async function interruptible<T>(fn: (i: Interrupts) => Promise<T>): Promise<T> {
  const interrupts = installInterrupts((msg) => process.stderr.write(`iac: ${msg}\n`));
  try {
    return await fn(interrupts);
  } finally {
    interrupts.dispose();
  }
}

export function reportTable(report: DeployReport): string {
  return table(
    ["SERVICE", "STATUS", "PORT", "COMMIT", "ENTRYPOINT", "ERROR"],
    report.services.map((s) => [
      s.name,
      s.status,
      s.port ? `127.0.0.1:${s.port}` : "-",
      s.commit?.slice(0, 12) ?? "-",
      s.entrypoint ? `${s.entrypoint.kind}: ${s.entrypoint.argv.join(" ")}` : "-",
      s.error?.split("\n")[0] ?? "",
    ]),
  );
}

/** Full multi-line errors (build output, hints) below the table, on stderr. */
export function reportErrors(report: Pick<DeployReport, "services">): void {
  for (const s of report.services) {
    if (s.error?.includes("\n")) process.stderr.write(`\n${s.name}: ${s.error}\n`);
  }
}

export function registerDeployCommands(program: Command): void {
  program
    .command("deploy")
    .description(
      "fetch, detect, build and apply every service of a repos file as one project, then\n" +
        "health-check each over gRPC with mTLS (exit 1 if any service is not SERVING)",
    )
    .option(
      "-f, --file <path>",
      "repos file, YAML or JSON (default: ./repos.yaml, repos.yml or repos.json)",
    )
    .addOption(projectOption())
    .addOption(sidecarOption())
    .addOption(networkOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .option("--follow", "with --output json: stream NDJSON progress events, then the result")
    .option("-v, --verbose", "show image build output")
    .action(async (flags: CommonFlags & { file?: string }, cmd: Command) => {
      const file = reposFile(flags.file, cmd);
      const config = configFromFlags(flags);
      const services = await loadReposFile(file, { maxServices: config.maxServices });
      const progress = progressFor(flags);
      let report: DeployReport;
      try {
        report = await interruptible((i) =>
          deploy(
            config,
            { project: config.project, services },
            progress.sink,
            i.signal,
            undefined,
            i.hard,
          ),
        );
      } finally {
        progress.stop();
      }
      if (flags.output === "json") {
        const { applied: _a, containersRecreated: _c, ...doc } = report;
        if (flags.follow) process.stdout.write(JSON.stringify(doc) + "\n");
        else printJson(doc);
      } else {
        // applied is undefined when terraform never ran (nothing could be prepared).
        if (report.applied !== undefined)
          process.stderr.write(
            report.applied
              ? `terraform: applied${report.release ? ` (release ${report.release})` : ""}\n`
              : "terraform: no changes\n",
          );
        process.stdout.write(reportTable(report));
        reportErrors(report);
      }
      if (report.services.some((s) => s.status !== "SERVING")) process.exitCode = 1;
    });

  program
    .command("plan")
    .description("fetch, detect and build every service, then show what terraform would change")
    .option(
      "-f, --file <path>",
      "repos file, YAML or JSON (default: ./repos.yaml, repos.yml or repos.json)",
    )
    .addOption(projectOption())
    .addOption(sidecarOption())
    .addOption(networkOption())
    .addOption(outputOption())
    .option("-v, --verbose", "show image build output")
    .action(async (flags: CommonFlags & { file?: string }, cmd: Command) => {
      const file = reposFile(flags.file, cmd);
      const config = configFromFlags(flags);
      const services = await loadReposFile(file, { maxServices: config.maxServices });
      const progress = progressFor({ ...flags, verbose: flags.verbose ?? true });
      let result;
      try {
        result = await planDeploy(config, { project: config.project, services }, progress.sink);
      } finally {
        progress.stop();
      }
      const { plan, ...rest } = result;
      const summary = {
        add: plan.add,
        change: plan.change,
        destroy: plan.destroy,
        changes: plan.changes,
      };
      if (flags.output === "json") printJson({ ...rest, plan: summary });
      else {
        process.stdout.write(reportTable({ ...rest }));
        reportErrors(rest);
        process.stdout.write(
          plan.changes
            ? `Plan: ${plan.add} to add, ${plan.change} to change, ${plan.destroy} to destroy.\n`
            : "No changes. Infrastructure matches the configuration.\n",
        );
      }
      if (rest.services.some((s) => s.status === "FAILED")) process.exitCode = 1;
    });

  program
    .command("destroy")
    .description("remove every container and the network of a project (nothing of another project)")
    .addOption(projectOption())
    .addOption(networkOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .action(async (flags: CommonFlags) => {
      const config = configFromFlags(flags);
      const progress = progressFor(flags);
      let result;
      try {
        result = await interruptible((i) =>
          destroy(config, config.project, progress.sink, i.signal, i.hard),
        );
      } finally {
        progress.stop();
      }
      if (flags.output === "json") printJson({ project: config.project, ...result });
      else
        process.stdout.write(
          result.removed.length
            ? `removed: ${result.removed.join(", ")}\n`
            : `project ${config.project}: nothing to remove\n`,
        );
    });

  program
    .command("health")
    .description(
      "gRPC HealthCheck of every deployed service (mTLS; on a swarm: every task); exit 1 if any is not SERVING",
    )
    .addOption(projectOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .action(async (flags: CommonFlags) => {
      const config = configFromFlags(flags);
      const services = await health(config, config.project);
      if (flags.output === "json") printJson({ project: config.project, services });
      else if (config.target === "swarm")
        process.stdout.write(
          table(
            ["SERVICE", "REPLICA", "NODE", "TASK", "STATUS", "PHASE", "RESTARTS", "MESSAGE"],
            services.map((s) => [
              s.name,
              s.replica === undefined ? "-" : String(s.replica),
              s.node ?? "-",
              s.taskState ?? "-",
              s.status,
              s.phase ?? "-",
              s.restarts === undefined ? "-" : String(s.restarts),
              s.message ?? "",
            ]),
          ),
        );
      else
        process.stdout.write(
          table(
            ["SERVICE", "STATUS", "PHASE", "EXIT", "RESTARTS", "UPTIME", "MESSAGE"],
            services.map((s) => [
              s.name,
              s.status,
              s.phase ?? "-",
              s.exitCode === undefined ? "-" : String(s.exitCode),
              s.restarts === undefined ? "-" : String(s.restarts),
              s.uptimeSeconds === undefined ? "-" : `${s.uptimeSeconds}s`,
              s.message ?? "",
            ]),
          ),
        );
      if (services.some((s) => s.status !== "SERVING")) process.exitCode = 1;
    });

  program
    .command("logs")
    .description("main()'s output of a service, from its runner's buffer (StreamLogs over mTLS)")
    .argument("<service>", "service name")
    .addOption(projectOption())
    .addOption(targetOption())
    .option("-f, --follow", "keep streaming new lines")
    .option("-n, --tail <lines>", "number of recent lines to show first (0 = all)", "100")
    .addOption(outputOption())
    .action(async (service: string, flags: CommonFlags & { tail: string }) => {
      const tail = Number(flags.tail);
      if (!Number.isInteger(tail) || tail < 0) {
        throw new UsageError(`--tail must be a non-negative integer, got '${flags.tail}'`);
      }
      const config = configFromFlags(flags);
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await streamLogs(
          config,
          config.project,
          service,
          { tail, follow: Boolean(flags.follow) },
          (l) => {
            if (flags.output === "json") process.stdout.write(JSON.stringify(l) + "\n");
            // The app's bytes, minus anything that would drive the terminal.
            else process.stdout.write(`${stripControls(l.msg)}\n`);
          },
          abort.signal,
        );
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
