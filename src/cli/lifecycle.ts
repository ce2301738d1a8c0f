// iac status | history | rollback | prune | adopt — operating what is deployed. Same
// conventions as every command: an unknown project is exit 2 naming the known ones, tables fit
// the terminal (80 columns in a pipe; full values in -o json), progress is quiet off a terminal
// (-v shows every line; the whole run is kept under the state directory).
import type { Command } from "commander";
import { UsageError } from "../kernel/errors.js";

import { projectDir } from "../stack/tfvars.js";
import { logHint, networkOption } from "./deploy.js";
import { table } from "./progress.js";
import { deployTable, failureDetails, terminalWidth } from "./report.js";
import { RunLog } from "./runlog.js";
import { palette } from "./style.js";
import {
  type OutputFormat,
  colorFor,
  configFromFlags,
  outputOption,
  printJson,
  progressFor,
  projectOption,
  withCancel,
} from "./shared.js";

interface ProjectFlags {
  project?: string;
  network?: string;
  output: OutputFormat;
  follow?: boolean;
  verbose?: boolean;
}

function age(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

/** "2026-12-02T05:38:03.123Z" -> "2026-12-02 05:38:03" (UTC; the full time is in -o json). */
export function shortTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "");
}

export function registerLifecycleCommands(program: Command): void {
  program
    .command("status")
    .description(
      "every project on this Docker engine (by labels and state): services, health, current release, age",
    )
    .addOption(outputOption())
    .action(async (flags: { output: OutputFormat }) => {
      const { overview } = await import("../operations/overview.js");
      const config = await configFromFlags({});
      const projects = await overview(config);
      if (flags.output === "json") return printJson({ state_dir: config.stateDir, projects });
      if (projects.length === 0) {
        process.stdout.write(`no projects on this engine (state: ${config.stateDir})\n`);
        return;
      }
      process.stdout.write(
        table(
          ["PROJECT", "STATE", "RELEASE", "AGE", "SERVICE", "STATUS", "COMMIT"],
          projects.flatMap((p) =>
            (p.services.length ? p.services : [undefined]).map((s, i) => [
              i === 0 ? p.project : "",
              i === 0 ? p.state : "",
              i === 0 ? (p.release ? `#${p.release.number} by ${p.release.principal}` : "-") : "",
              i === 0 ? age(p.age_seconds) : "",
              s?.name ?? "-",
              s?.status ?? "-",
              s?.commit?.slice(0, 7) ?? "-",
            ]),
          ),
          { width: terminalWidth(process.stdout), shrink: [2, 4, 0] },
        ),
      );
      for (const p of projects)
        if (p.state === "no-state")
          process.stderr.write(
            `${p.project}: containers run but this machine has no state for them: iac adopt --project ${p.project}\n`,
          );
    });

  program
    .command("history")
    .description("releases of a project: number, time, who, and per service its commit and image")
    .addOption(projectOption())
    .addOption(outputOption())
    .action(async (flags: ProjectFlags) => {
      const { history } = await import("../operations/releases.js");
      const { assertProjectOnDisk } = await import("../operations/known-projects.js");
      const config = await configFromFlags(flags);
      await assertProjectOnDisk(config, config.project, "history");
      const releases = await history(config, config.project);
      if (flags.output === "json") return printJson({ project: config.project, releases });
      if (releases.length === 0) {
        process.stdout.write(`project ${config.project}: no releases yet\n`);
        return;
      }
      process.stdout.write(
        table(
          ["RELEASE", "TIME (UTC)", "BY", "KIND", "SERVICES"],
          releases.map((r) => [
            String(r.number),
            shortTime(r.time),
            r.principal,
            r.kind + (r.rollback_of ? ` of #${r.rollback_of}` : ""),
            r.services.map((s) => `${s.name}@${s.commit.slice(0, 7)} ${s.status}`).join(", "),
          ]),
          { width: terminalWidth(process.stdout), shrink: [4, 2] },
        ),
      );
    });

  program
    .command("rollback")
    .description(
      "redeploy the images of an earlier release (default: the previous one) without fetching " +
        "or building; health-checked like a deploy (exit 1 if any service is not SERVING)",
    )
    .option("--to <release>", "release number, from 1 (see iac history)")
    .addOption(projectOption())
    .addOption(outputOption())
    .option("--follow", "with --output json: stream NDJSON progress events, then the result")
    .option("-v, --verbose", "show terraform output")
    .action(async (flags: ProjectFlags & { to?: string }, cmd: Command) => {
      const { rollback } = await import("../operations/releases.js");
      const { assertProjectOnDisk } = await import("../operations/known-projects.js");
      const to = flags.to === undefined ? undefined : Number(flags.to);
      if (to !== undefined && (!Number.isInteger(to) || to < 1))
        throw new UsageError(
          `--to must be a release number (1, 2, ...), got '${flags.to}'`,
          "list them: iac history",
        );
      const config = await configFromFlags(flags);
      await assertProjectOnDisk(config, config.project, "rollback");
      const log = new RunLog(projectDir(config, config.project), "rollback");
      const progress = await progressFor(cmd, flags, log);
      let report;
      try {
        report = await withCancel((signal) =>
          rollback(config, { project: config.project, to }, progress.sink, signal),
        );
      } catch (err) {
        progress.stop();
        if (log.written) process.stderr.write(`iac: full log: ${log.file}\n`);
        throw err;
      }
      progress.stop();
      const failed = report.services.some((s) => s.status !== "SERVING");
      if (flags.output === "json") {
        const { applied: _a, containersRecreated: _c, ...doc } = report;
        if (flags.follow) process.stdout.write(JSON.stringify(doc) + "\n");
        else printJson(doc);
      } else {
        const c = palette(await colorFor(cmd, process.stderr));
        process.stderr.write(
          `rolled back to release ${report.rolled_back_to}` +
            (report.release ? ` (recorded as release ${report.release})\n` : " (no changes)\n"),
        );
        process.stdout.write(deployTable(report, terminalWidth(process.stdout)));
        process.stderr.write(failureDetails(report.services, c) + logHint(log, failed));
      }
      if (failed) process.exitCode = 1;
    });

  program
    .command("prune")
    .description("remove the images of releases older than the last IAC_KEEP_RELEASES (default 5)")
    .addOption(projectOption())
    .addOption(outputOption())
    .action(async (flags: ProjectFlags) => {
      const { prune } = await import("../operations/releases.js");
      const { assertProjectOnDisk } = await import("../operations/known-projects.js");
      const config = await configFromFlags(flags);
      await assertProjectOnDisk(config, config.project, "prune");
      const result = await prune(config, config.project);
      if (flags.output === "json") return printJson(result);
      process.stdout.write(
        result.removed.length
          ? `removed ${result.removed.length} image(s): ${result.removed.join(", ")}\n`
          : `project ${config.project}: nothing to prune (keeping the images of the last ${result.kept} releases)\n`,
      );
      for (const s of result.skipped) process.stderr.write(`kept ${s.image}: ${s.reason}\n`);
    });

  program
    .command("adopt")
    .description(
      "take over a project whose containers run but whose state this machine lacks: import " +
        "them into fresh Terraform state (after which a plan shows no changes)",
    )
    .addOption(projectOption())
    .addOption(networkOption())
    .addOption(outputOption())
    .option("-v, --verbose", "show terraform output")
    .action(async (flags: ProjectFlags, cmd: Command) => {
      const { adopt } = await import("../operations/adopt.js");
      const config = await configFromFlags(flags);
      const log = new RunLog(projectDir(config, config.project), "adopt");
      const progress = await progressFor(cmd, { ...flags, follow: false }, log);
      let result;
      try {
        result = await adopt(config, config.project, progress.sink);
      } catch (err) {
        progress.stop();
        if (log.written) process.stderr.write(`iac: full log: ${log.file}\n`);
        throw err;
      }
      progress.stop();
      if (flags.output === "json") return printJson(result);
      process.stdout.write(
        `adopted project ${result.project}: ${result.services.join(", ")} ` +
          `(${result.imported.length} resources imported` +
          (result.recreated.length
            ? `, ${result.recreated.length} container(s) recreated to converge`
            : "") +
          `; plan: ${result.planChanges ? "changes remain, run iac plan" : "no changes"})\n` +
          `check it: iac health --project ${result.project}\n`,
      );
    });
}
