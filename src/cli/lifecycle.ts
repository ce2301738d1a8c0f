// iac status | history | rollback | prune | adopt — operating what is deployed.
import type { Command } from "commander";
import { UsageError } from "../kernel/errors.js";
import { overview } from "../operations/overview.js";
import { history, prune, rollback } from "../operations/releases.js";
import { adopt } from "../operations/adopt.js";
import { table } from "./progress.js";
import {
  type CommonFlags,
  networkOption,
  progressFor,
  reportErrors,
  reportTable,
} from "./deploy.js";
import { configFromFlags, outputOption, printJson, projectOption } from "./shared.js";

function age(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

export function registerLifecycleCommands(program: Command): void {
  program
    .command("status")
    .description(
      "every project on this Docker engine (by labels and state): services, health, current release, age",
    )
    .addOption(outputOption())
    .action(async (flags: { output: "text" | "json" }) => {
      const config = configFromFlags({});
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
              s?.commit?.slice(0, 12) ?? "-",
            ]),
          ),
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
    .action(async (flags: CommonFlags) => {
      const config = configFromFlags(flags);
      const releases = await history(config, config.project);
      if (flags.output === "json") return printJson({ project: config.project, releases });
      if (releases.length === 0) {
        process.stdout.write(`project ${config.project}: no releases yet\n`);
        return;
      }
      process.stdout.write(
        table(
          ["RELEASE", "TIME", "BY", "KIND", "SERVICES"],
          releases.map((r) => [
            String(r.number),
            r.time,
            r.principal,
            r.kind + (r.rollback_of ? ` of #${r.rollback_of}` : ""),
            r.services.map((s) => `${s.name}@${s.commit.slice(0, 12)} ${s.status}`).join(", "),
          ]),
        ),
      );
    });

  program
    .command("rollback")
    .description(
      "redeploy the images of an earlier release (default: the previous one) without fetching\n" +
        "or building; health-checked like a deploy (exit 1 if any service is not SERVING)",
    )
    .option("--to <release>", "release number (see iac history)")
    .addOption(projectOption())
    .addOption(outputOption())
    .option("--follow", "with --output json: stream NDJSON progress events, then the result")
    .action(async (flags: CommonFlags & { to?: string }) => {
      const to = flags.to === undefined ? undefined : Number(flags.to);
      if (to !== undefined && (!Number.isInteger(to) || to < 1))
        throw new UsageError(`--to must be a release number (1, 2, ...), got '${flags.to}'`);
      const config = configFromFlags(flags);
      const progress = progressFor(flags);
      let report;
      try {
        report = await rollback(config, { project: config.project, to }, progress.sink);
      } finally {
        progress.stop();
      }
      if (flags.output === "json") {
        const { applied: _a, containersRecreated: _c, ...doc } = report;
        if (flags.follow) process.stdout.write(JSON.stringify(doc) + "\n");
        else printJson(doc);
      } else {
        process.stderr.write(
          `rolled back to release ${report.rolled_back_to}` +
            (report.release ? ` (recorded as release ${report.release})\n` : " (no changes)\n"),
        );
        process.stdout.write(reportTable(report));
        reportErrors(report);
      }
      if (report.services.some((s) => s.status !== "SERVING")) process.exitCode = 1;
    });

  program
    .command("prune")
    .description("remove the images of releases older than the last IAC_KEEP_RELEASES (default 5)")
    .addOption(projectOption())
    .addOption(outputOption())
    .action(async (flags: CommonFlags) => {
      const config = configFromFlags(flags);
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
      "take over a project whose containers run but whose state this machine lacks: import\n" +
        "them into fresh Terraform state (after which a plan shows no changes)",
    )
    .addOption(projectOption())
    .addOption(networkOption())
    .addOption(outputOption())
    .action(async (flags: CommonFlags) => {
      const config = configFromFlags(flags);
      const progress = progressFor(flags);
      let result;
      try {
        result = await adopt(config, config.project, progress.sink);
      } finally {
        progress.stop();
      }
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
