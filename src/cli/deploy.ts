// iac deploy: the whole pipeline for a repos file, as one project.
import { Option, type Command } from "commander";
import type { DeployReport } from "../operations/deploy.js";
import { projectDir } from "../stack/tfvars.js";
import { deployTable, failureDetails, terminalWidth } from "./report.js";
import { RunLog } from "./runlog.js";
import { palette } from "./style.js";
import {
  type OutputFormat,
  colorFor,
  configFromFlags,
  fileOption,
  outputOption,
  printJson,
  progressFor,
  projectOption,
  readRepos,
  reposFile,
  targetOption,
  withCancel,
} from "./shared.js";

export interface PipelineFlags {
  file?: string;
  project?: string;
  output: OutputFormat;
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

/** Where the full log of a failed step is: printed under the result when something failed. */
export function logHint(log: RunLog | undefined, failed: boolean): string {
  return failed && log?.written ? `full log: ${log.file}\n` : "";
}

export function registerDeployCommand(program: Command): void {
  program
    .command("deploy")
    .description(
      "fetch, detect, build and apply every service of a repos file as one project, then " +
        "health-check each over gRPC with mTLS (exit 1 if any service is not SERVING)",
    )
    .addOption(fileOption())
    .addOption(projectOption())
    .addOption(sidecarOption())
    .addOption(networkOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .option("--follow", "with --output json: stream NDJSON progress events, then the result")
    .option("-v, --verbose", "show image build and terraform output")
    .action(async (flags: PipelineFlags, cmd: Command) => {
      const { deploy } = await import("../operations/deploy.js");
      const file = reposFile(flags.file, cmd);
      const config = await configFromFlags(flags);
      const services = await readRepos(file, config.maxServices);
      const log = new RunLog(projectDir(config, config.project), "deploy");
      const progress = await progressFor(cmd, flags, log);
      let report: DeployReport;
      try {
        report = await withCancel((signal, hard) =>
          deploy(
            config,
            { project: config.project, services },
            progress.sink,
            signal,
            undefined,
            hard,
          ),
        );
      } catch (err) {
        progress.stop();
        if (log.written) process.stderr.write(`iac: full log: ${log.file}\n`);
        throw err;
      }
      progress.stop();
      const failed = report.services.some((s) => s.status !== "SERVING");
      if (flags.output === "json") {
        const { applied: _a, containersRecreated: _c, terraformSkipped: _s, ...doc } = report;
        if (flags.follow) process.stdout.write(JSON.stringify(doc) + "\n");
        else printJson(doc);
      } else {
        const c = palette(await colorFor(cmd, process.stderr));
        // applied is undefined when terraform never ran (nothing could be prepared).
        if (report.applied !== undefined)
          process.stderr.write(
            report.applied
              ? `terraform: applied${report.release ? ` (release ${report.release})` : ""}\n`
              : report.terraformSkipped
                ? "terraform: no changes (skipped: the stack is as last applied and every container runs as applied)\n"
                : "terraform: no changes\n",
          );
        process.stdout.write(deployTable(report, terminalWidth(process.stdout)));
        process.stderr.write(failureDetails(report.services, c) + logHint(log, failed));
      }
      if (failed) process.exitCode = 1;
    });
}
