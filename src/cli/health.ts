// iac health: the runner's HealthCheck of every deployed service, over gRPC with mTLS.
import type { Command } from "commander";

import { table } from "./progress.js";
import { terminalWidth } from "./report.js";
import {
  type OutputFormat,
  configFromFlags,
  outputOption,
  printJson,
  projectOption,
  targetOption,
} from "./shared.js";

export function registerHealthCommand(program: Command): void {
  program
    .command("health")
    .description(
      "gRPC HealthCheck of every deployed service (mTLS; on a swarm: every task); exit 1 if any is not SERVING",
    )
    .addOption(projectOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .action(async (flags: { project?: string; target?: string; output: OutputFormat }) => {
      const { health } = await import("../operations/status.js");
      const config = await configFromFlags(flags);
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
            { width: terminalWidth(process.stdout), shrink: [7, 2], optional: [7] },
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
            { width: terminalWidth(process.stdout), shrink: [6, 0], optional: [6] },
          ),
        );
      if (services.some((s) => s.status !== "SERVING")) process.exitCode = 1;
    });
}
