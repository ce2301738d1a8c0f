// iac plan: what a deploy would do, per service and for Terraform, without building images
// and without changing anything.
import type { Command } from "commander";
import { type PlanReport, planDeploy } from "../operations/deploy.js";
import { projectDir } from "../stack/tfvars.js";
import { type PipelineFlags, logHint, networkOption, sidecarOption } from "./deploy.js";
import { failureDetails, planSummary, planTable, terminalWidth } from "./report.js";
import { RunLog } from "./runlog.js";
import { palette } from "./style.js";
import {
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

export function registerPlanCommand(program: Command): void {
  program
    .command("plan")
    .description(
      "show what `iac deploy` would do: per service + new, ~ update, -/+ replace, = unchanged " +
        "or - remove, which images it would build (nothing is built), and terraform's plan",
    )
    .addOption(fileOption())
    .addOption(projectOption())
    .addOption(sidecarOption())
    .addOption(networkOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .option("-v, --verbose", "show terraform output")
    .action(async (flags: PipelineFlags, cmd: Command) => {
      const file = reposFile(flags.file, cmd);
      const config = configFromFlags(flags);
      const services = await readRepos(file, config.maxServices);
      const log = new RunLog(projectDir(config, config.project), "plan");
      const progress = progressFor(cmd, { ...flags, follow: false }, log);
      let report: PlanReport;
      try {
        report = await withCancel((signal) =>
          planDeploy(config, { project: config.project, services }, progress.sink, signal),
        );
      } finally {
        progress.stop();
      }
      const failed = report.services.some((s) => s.error !== undefined);
      if (flags.output === "json") {
        const { plan, ...rest } = report;
        printJson({
          ...rest,
          services: rest.services.map(({ status: _s, ...s }) => s),
          plan: {
            add: plan.add,
            change: plan.change,
            destroy: plan.destroy,
            changes: plan.changes,
          },
          summary: planSummary(report),
        });
      } else {
        const c = palette(colorFor(cmd, process.stderr));
        process.stdout.write(planTable(report, terminalWidth(process.stdout)));
        process.stderr.write(failureDetails(report.services, c) + logHint(log, failed));
        process.stdout.write(planSummary(report).join("\n") + "\n");
      }
      if (failed) process.exitCode = 1;
    });
}
