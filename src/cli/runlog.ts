// The full output of one run (every stage, build and terraform line), kept under the project's
// state directory: <state>/<project>/logs/<command>.log, replaced by the next run of that command.
// The terminal stays quiet; when a step fails the command prints this file's path.
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import path from "node:path";
import type { DeployEvent } from "../kernel/events.js";

export class RunLog {
  private stream?: WriteStream;
  readonly file: string;

  constructor(projectDir: string, command: string) {
    this.file = path.join(projectDir, "logs", `${command}.log`);
  }

  readonly sink = (e: DeployEvent): void => {
    if (e.type === "result") return;
    // Created on the first line, so a run that fails before any work leaves nothing behind.
    if (!this.stream) {
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      this.stream = createWriteStream(this.file, { mode: 0o600 });
    }
    const who = e.service ? ` ${e.service}` : "";
    const line =
      e.type === "stage"
        ? `${e.ts}${who} [${e.stage}]${e.message ? ` ${e.message}` : ""}`
        : `${e.ts}${who} ${e.source}: ${e.line}`;
    this.stream.write(line + "\n");
  };

  get written(): boolean {
    return this.stream !== undefined;
  }

  close(): void {
    this.stream?.end();
  }
}
