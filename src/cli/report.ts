// The final summaries of deploy and plan: a table that fits the terminal (80 columns in a pipe;
// long cells cut with "…", full values in -o json), then every failure whole below it.
import type { DeployReport, PlanReport, ServiceReport } from "../operations/deploy.js";
import { countActions, summaryLine } from "../operations/plan-actions.js";
import { table } from "./progress.js";
import type { Palette } from "./style.js";
import { stripControls, stripControlsKeepLines } from "./termtext.js";

export function terminalWidth(stream: { columns?: number; isTTY?: boolean }): number {
  return stream.isTTY && stream.columns ? stream.columns : 80;
}

const entrypoint = (s: ServiceReport) =>
  s.entrypoint ? `${s.entrypoint.kind}: ${s.entrypoint.argv.join(" ")}` : "-";

export function deployTable(report: DeployReport, width: number): string {
  return table(
    ["SERVICE", "STATUS", "PORT", "COMMIT", "ENTRYPOINT", "ERROR"],
    report.services.map((s) => [
      s.name,
      s.status,
      s.port ? `127.0.0.1:${s.port}` : "-",
      s.commit?.slice(0, 7) ?? "-",
      entrypoint(s),
      s.error?.split("\n")[0] ?? "",
    ]),
    { width, shrink: [4, 5, 0], optional: [5] },
  );
}

export function planTable(report: PlanReport, width: number): string {
  const rows = report.services.map((s) => [
    s.name,
    s.action?.text ?? "! failed",
    s.build ?? "-",
    s.commit?.slice(0, 7) ?? "-",
    entrypoint(s),
    s.error?.split("\n")[0] ?? "",
  ]);
  for (const name of report.removed) rows.push([name, "- remove", "-", "-", "-", ""]);
  return table(["SERVICE", "ACTION", "IMAGE", "COMMIT", "ENTRYPOINT", "ERROR"], rows, {
    width,
    shrink: [4, 5, 0],
    optional: [5],
  });
}

/** The lines under a plan's table: per-service summary, then Terraform's own counts. */
export function planSummary(report: PlanReport): string[] {
  if (report.skipped)
    return ["Nothing to plan: no service could be prepared (errors above); nothing was changed."];
  const actions = report.services
    .map((s) => s.action)
    .filter((a) => a !== undefined)
    .concat(report.removed.map(() => ({ kind: "remove" as const, text: "- remove" })));
  const wouldBuild = report.services.filter((s) => s.build === "would build").length;
  const lines = [summaryLine(countActions(actions), wouldBuild)];
  const { plan } = report;
  lines.push(
    plan.changes
      ? `Terraform: ${plan.add} to add, ${plan.change} to change, ${plan.destroy} to destroy.`
      : report.terraformSkipped
        ? "Terraform: no changes (the stack and every container match the last apply; terraform not run)."
        : "Terraform: no changes, infrastructure matches the configuration.",
  );
  return lines;
}

/** Every failed service with its whole error and main()'s last lines, for below the table. */
export function failureDetails(services: ServiceReport[], c: Palette): string {
  let out = "";
  for (const s of services) {
    if (!s.error && !s.logs?.length) continue;
    if (s.status === "SERVING") continue;
    out += `\n${c.red("✖")} ${c.bold(s.name)}: ${stripControlsKeepLines(s.error ?? s.status)}\n`;
    if (s.logs?.length) {
      out += c.dim(`  last ${s.logs.length} lines of main()'s output:`) + "\n";
      // main()'s bytes, minus anything that would drive the terminal.
      for (const l of s.logs) out += `  ${c.dim("|")} ${stripControls(l)}\n`;
    }
  }
  return out;
}
