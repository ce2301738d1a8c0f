// iac images: make sure the runtime images are there -- present -> docker pull -> local
// substitute -- and say which is used and why. scripts/bootstrap.sh runs `iac images --record`.
import { Option, type Command } from "commander";

import { UsageError } from "../kernel/errors.js";
import type { ImageRole } from "../image/runtime-images.js";
import { outputOption, printJson, progress } from "./shared.js";

interface ImagesFlags {
  output: "text" | "json";
  record?: boolean;
  sidecar?: string;
}

export function registerImagesCommand(program: Command): void {
  program
    .command("images")
    .description(
      "ensure the base and Envoy images: use each if present, else docker pull it, else (pull\n" +
        "failed) build its local substitute; print which image is used and why",
    )
    .argument("[roles...]", "base and/or envoy (default: what a deploy needs)")
    .option(
      "--record",
      "start from the configured images (not the last record) and record the result as\n" +
        "defaults for later commands (what scripts/bootstrap.sh does)",
    )
    .addOption(
      new Option("--sidecar <mode>", "envoy or none (default: $IAC_SIDECAR or envoy)").choices([
        "envoy",
        "none",
      ]),
    )
    .addOption(outputOption())
    .action(async (roleArgs: string[], flags: ImagesFlags) => {
      const { loadSystemConfig, readBootstrapRecord } = await import("../kernel/config.js");
      const { describeChoice, dockerBackend, ensureRuntimeImages, rolesFor, writeBootstrapRecord } =
        await import("../image/runtime-images.js");
      const config = loadSystemConfig(
        { IAC_SIDECAR: flags.sidecar },
        { bootstrapRecord: !flags.record },
      );
      for (const r of roleArgs) {
        if (r !== "base" && r !== "envoy")
          throw new UsageError(
            `images: unknown image '${r}'`,
            "name base and/or envoy, e.g. iac images base envoy",
          );
      }
      const roles = roleArgs.length > 0 ? (roleArgs as ImageRole[]) : rolesFor(config);
      const backend = dockerBackend(config, (line) => progress(`  ${line}`));
      const { choices } = await ensureRuntimeImages(config, roles, backend, (c) => {
        if (flags.output === "text") process.stdout.write(describeChoice(c, config.origins) + "\n");
      });
      let record: string | undefined;
      if (flags.record) {
        // What an earlier run recorded stays for the images not asked for this time.
        const earlier = readBootstrapRecord(config.cacheDir) ?? {};
        record = await writeBootstrapRecord(config.cacheDir, choices, earlier);
        if (flags.output === "text") progress(`recorded in ${record}`);
      }
      if (flags.output === "json") printJson({ images: choices, record });
    });
}
