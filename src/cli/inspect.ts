// iac inspect: resolve slugs, fetch and detect entrypoints (no Docker needed).
import type { Command } from "commander";
import type { InspectResult } from "../operations/inspect.js";
import { ProgressView, table } from "./progress.js";
import { terminalWidth } from "./report.js";
import { stripControlsKeepLines } from "./termtext.js";
import type { ServiceSpec } from "../kernel/types.js";
import {
  configFromFlags,
  fileOption,
  outputOption,
  printJson,
  readRepos,
  reposFile,
} from "./shared.js";

function humanTable(results: InspectResult[]): string {
  return table(
    ["SERVICE", "SLUG", "PORT", "COMMIT", "KIND", "ARGV", "LIMITS", "RULE / ERROR"],
    results.map((r) => [
      r.name,
      r.slug,
      r.port === undefined ? "-" : String(r.port),
      r.commit?.slice(0, 7) ?? "-",
      r.entrypoint?.kind ?? "FAILED",
      r.entrypoint ? r.entrypoint.argv.join(" ") : "-",
      `${r.resources.memory} ${r.resources.cpus}cpu ${r.resources.pids}pids`,
      r.entrypoint
        ? `${r.entrypoint.rule}${r.build === "dockerfile" ? " (own Dockerfile)" : ""}`
        : (r.error ?? "").replace(/\n\s*/g, "; "),
    ]),
    // Fits the terminal (80 columns in a pipe): long cells are cut with "…", except the service
    // name; -o json has every value whole.
    { width: terminalWidth(process.stdout), shrink: [5, 7, 1, 4, 6] },
  );
}

export function registerInspectCommand(program: Command): void {
  program
    .command("inspect")
    .description(
      "resolve each slug to a commit, fetch it and detect how to run its main() (no Docker); " +
        "exit 1 if any service failed",
    )
    .argument("[slugs...]", "slugs to inspect instead of (or in addition to) --file")
    .addOption(fileOption())
    .addOption(outputOption())
    .action(
      async (slugs: string[], flags: { file?: string; output: "text" | "json" }, cmd: Command) => {
        const { inspectJson, inspectServices } = await import("../operations/inspect.js");
        const { parseServiceList } = await import("../intake/repofile.js");
        // Slugs alone need no file; without slugs, --file or the default repos file.
        const file = slugs.length === 0 || flags.file ? reposFile(flags.file, cmd) : undefined;
        const config = await configFromFlags({});
        const specs: ServiceSpec[] = [];
        if (file) specs.push(...(await readRepos(file)));
        if (slugs.length > 0) specs.push(...parseServiceList(slugs, "command line", process.cwd()));
        const view = new ProgressView({
          tty: Boolean(process.stderr.isTTY) && flags.output !== "json",
          verbose: false,
        });
        let results: InspectResult[];
        try {
          results = await inspectServices(specs, config, view.sink);
        } finally {
          view.stop();
        }
        if (flags.output === "json") printJson(inspectJson(results));
        else {
          process.stdout.write(humanTable(results));
          // The table cuts long cells: every error whole below it (with its hint), on stderr.
          for (const r of results)
            if (r.error !== undefined)
              process.stderr.write(`\n✖ ${r.name}: ${stripControlsKeepLines(r.error)}\n`);
        }
        if (results.some((r) => r.error !== undefined)) process.exitCode = 1;
      },
    );
}
