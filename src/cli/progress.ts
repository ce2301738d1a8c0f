// Renders pipeline events for humans on stderr: a live per-service view on a TTY (stage,
// elapsed), plain timestamped lines otherwise. Machine output (JSON) never goes through here.
import type { DeployEvent, EventSink, Stage } from "../kernel/events.js";
import { stripControls } from "./termtext.js";

interface Row {
  name: string;
  stage: Stage;
  since: number;
  message: string;
}

export interface ProgressOptions {
  tty: boolean;
  verbose: boolean;
  write?: (s: string) => void;
  now?: () => number;
}

const DONE: Stage[] = ["done", "failed"];

function fmtElapsed(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

export class ProgressView {
  private readonly rows = new Map<string, Row>();
  private readonly start: number;
  private lastLine = "";
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  private readonly write: (s: string) => void;
  private readonly now: () => number;

  constructor(private readonly opts: ProgressOptions) {
    this.write = opts.write ?? ((s) => process.stderr.write(s));
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    if (opts.tty) {
      this.timer = setInterval(() => this.redraw(), 250);
      this.timer.unref();
    }
  }

  readonly sink: EventSink = (event: DeployEvent) => {
    if (event.type === "stage") this.onStage(event);
    else if (event.type === "log") this.onLog(event);
  };

  private onStage(raw: Extract<DeployEvent, { type: "stage" }>): void {
    const e = raw.message === undefined ? raw : { ...raw, message: stripControls(raw.message) };
    const t = this.now();
    if (e.service) {
      const row = this.rows.get(e.service) ?? {
        name: e.service,
        stage: e.stage,
        since: t,
        message: "",
      };
      if (row.stage !== e.stage) row.since = t;
      row.stage = e.stage;
      row.message = e.message ?? "";
      this.rows.set(e.service, row);
    }
    if (this.opts.tty) {
      if (!e.service && e.message) this.lastLine = e.message;
      this.redraw();
    } else {
      const who = e.service ? `${e.service}: ` : "";
      this.write(
        `[${fmtElapsed(t - this.start)}] ${who}${e.stage}${e.message ? ` — ${e.message}` : ""}\n`,
      );
    }
  }

  private onLog(raw: Extract<DeployEvent, { type: "log" }>): void {
    // App, build and fetch output: never let it drive the terminal.
    const e = { ...raw, line: stripControls(raw.line) };
    if (e.source === "build" && !this.opts.verbose) {
      if (this.opts.tty && e.service) {
        const row = this.rows.get(e.service);
        if (row) row.message = e.line.trim();
      }
      return;
    }
    if (this.opts.tty) {
      this.lastLine = `${e.source}: ${e.line}`;
      return;
    }
    const who = e.service ? `${e.service} ` : "";
    this.write(`  ${who}${e.source}: ${e.line}\n`);
  }

  private redraw(): void {
    if (!this.opts.tty) return;
    const t = this.now();
    const width = process.stderr.columns || 100;
    const lines = [...this.rows.values()].map((r) => {
      const elapsed = DONE.includes(r.stage) ? "" : fmtElapsed(t - r.since);
      const mark = r.stage === "done" ? "✔" : r.stage === "failed" ? "✖" : "…";
      return truncate(
        `${mark} ${r.name.padEnd(20)} ${r.stage.padEnd(8)} ${elapsed.padStart(7)}  ${r.message}`,
        width - 1,
      );
    });
    if (this.lastLine) lines.push(truncate(`  ${this.lastLine}`, width - 1));
    let out = this.drawn > 0 ? `\x1b[${this.drawn}F` : "";
    out += lines.map((l) => `\x1b[2K${l}`).join("\n") + "\n";
    this.write(out);
    this.drawn = lines.length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.redraw();
  }
}

/** A fixed-width table (final summaries). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return (
    [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n"
  );
}
