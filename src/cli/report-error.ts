// How an error reaches the user: `iac: error: <message>` on stderr, its lines kept (terminal
// controls stripped from each), the hint on its own line.
import { CommanderError } from "commander";
import { formatError } from "../kernel/errors.js";
import { stripControlsKeepLines } from "./termtext.js";

export function reportError(err: unknown): void {
  if (err instanceof CommanderError) return; // commander already printed it
  process.stderr.write(
    `iac: error: ${stripControlsKeepLines(formatError(err, { indent: "  " }))}\n`,
  );
}
