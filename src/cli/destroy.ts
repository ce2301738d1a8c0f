// iac destroy: removes a project after naming what goes. On a terminal it asks; elsewhere
// (CI, pipes) --yes is required, so a script never destroys by accident.
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { UsageError } from "../kernel/errors.js";
import type { DestroyTargets } from "../operations/destroy.js";
import { networkOption } from "./deploy.js";
import { palette } from "./style.js";
import {
  type OutputFormat,
  colorFor,
  configFromFlags,
  outputOption,
  printJson,
  progressFor,
  projectOption,
  targetOption,
  withCancel,
} from "./shared.js";

function describeTargets(t: DestroyTargets): string {
  const lines = [`project ${t.project} will be destroyed:`];
  for (const c of t.containers) lines.push(`  - container ${c}`);
  for (const n of t.networks) lines.push(`  - network ${n} (no other project uses it)`);
  const orphans = t.services.filter((s) => !t.containers.includes(`${t.project}-${s}`));
  for (const s of orphans) lines.push(`  - service ${s} (state only, no container running)`);
  lines.push("  - its Terraform state and ports (certificates in the secrets folder stay)");
  if (t.keptNetwork) lines.push(`network ${t.keptNetwork} stays (other containers use it)`);
  return lines.join("\n") + "\n";
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export function registerDestroyCommand(program: Command): void {
  program
    .command("destroy")
    .description(
      "remove every container and the network of a project (nothing of another project); " +
        "asks first on a terminal, needs --yes elsewhere",
    )
    .addOption(projectOption())
    .addOption(networkOption())
    .addOption(targetOption())
    .addOption(outputOption())
    .option("-y, --yes", "do not ask for confirmation (required when not on a terminal)")
    .action(
      async (
        flags: {
          project?: string;
          network?: string;
          target?: string;
          output: OutputFormat;
          yes?: boolean;
        },
        cmd: Command,
      ) => {
        const { destroy, destroyTargets } = await import("../operations/destroy.js");
        const config = await configFromFlags(flags);
        // The swarm target sweeps by label on the manager; destroySwarm names what it removed.
        const targets =
          config.target === "swarm" ? undefined : await destroyTargets(config, config.project);
        const c = palette(await colorFor(cmd, process.stderr));
        if (!flags.yes) {
          if (!process.stdin.isTTY || !process.stderr.isTTY)
            throw new UsageError(
              `destroy of project ${config.project} needs confirmation, and this is not a terminal`,
              `pass --yes to destroy without asking: iac destroy --project ${config.project} --yes`,
            );
          process.stderr.write(
            targets
              ? describeTargets(targets)
              : `project ${config.project} will be destroyed on the swarm: its services, secrets, configs, network and Terraform state\n`,
          );
          if (!(await confirm(c.bold(`Destroy project ${config.project}? [y/N] `)))) {
            process.stderr.write("destroy cancelled: nothing was removed\n");
            process.exitCode = 1;
            return;
          }
        }
        const progress = await progressFor(cmd, { output: flags.output });
        let result;
        try {
          result = await withCancel((signal, hard) =>
            destroy(config, config.project, progress.sink, signal, hard),
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
      },
    );
}
