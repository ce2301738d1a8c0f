// Renders pipeline events for humans on stderr. Machine output (JSON) never goes through here.
//  - On a TTY: a live table, one row per service with its CURRENT stage, the time spent in it
//    and what it is doing; a footer with the project's step (terraform plan/apply). The view
//    never grows past the terminal's height: finished rows collapse into one count line.
//  - Off a TTY (CI, pipes): quiet. Only milestones (project steps, each service's outcome);
//    build and terraform output only with --verbose. The full output of a run is kept in a log
//    file (see LogFile) whose path the command prints when a step fails.
import type { DeployEvent, EventSink, Stage } from "../kernel/events.js";
import { type Palette, palette } from "./style.js";
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
  color?: boolean;
  write?: (s: string) => void;
  now?: () => number;
  /** Terminal size; defaults to process.stderr's. */
  columns?: () => number;
  rows?: () => number;
}

const FINISHED: Stage[] = ["done", "failed"];
/** Project-level steps that every prepared (not finished) service row follows. */
const PROJECT_STEPS: Stage[] = ["plan", "apply", "destroy"];

function fmtElapsed(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** Cuts `s` to `n` visible characters, marking the cut with "…". */
export function truncate(s: string, n: number): string {
  if (n <= 0) return "";
  return s.length > n ? s.slice(0, Math.max(0, n - 1)) + "…" : s;
}

const QUIET_SOURCES = ["build", "terraform", "health"];

/** Terraform lines worth a glance in the footer: resource progress, not HCL fragments. */
const TF_PROGRESS = /^(docker_\w+\.\S+: .*|Plan: .*|Apply complete!.*|Destroy complete!.*)$/;

export class ProgressView {
  private readonly rows = new Map<string, Row>();
  private readonly start: number;
  private footer = "";
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly write: (s: string) => void;
  private readonly now: () => number;
  private readonly c: Palette;

  constructor(private readonly opts: ProgressOptions) {
    this.write = opts.write ?? ((s) => process.stderr.write(s));
    this.now = opts.now ?? Date.now;
    this.c = palette(Boolean(opts.color));
    this.start = this.now();
    if (opts.tty) {
      this.timer = setInterval(() => this.redraw(), 250);
      this.timer.unref();
    }
  }

  readonly sink: EventSink = (event: DeployEvent) => {
    if (this.stopped) return;
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
    } else if (PROJECT_STEPS.includes(e.stage)) {
      // A project step (one terraform run for all) is every waiting service's current stage.
      for (const row of this.rows.values()) {
        if (FINISHED.includes(row.stage) || row.stage === "queued") continue;
        if (row.stage !== e.stage) row.since = t;
        row.stage = e.stage;
        row.message = e.message ?? "";
      }
    }
    if (this.opts.tty) {
      if (!e.service && e.message) this.footer = `${e.stage}: ${e.message}`;
      this.redraw();
    } else if (this.opts.verbose || !e.service || FINISHED.includes(e.stage)) {
      const who = e.service ? `${e.service}: ` : "";
      const stage = FINISHED.includes(e.stage) && e.service ? "" : `${e.stage}`;
      const text = [stage, e.message].filter(Boolean).join(" — ");
      this.write(`[${fmtElapsed(t - this.start)}] ${who}${text}\n`);
    }
  }

  private onLog(raw: Extract<DeployEvent, { type: "log" }>): void {
    // App, build and fetch output: never let it drive the terminal.
    const e = { ...raw, line: stripControls(raw.line) };
    if (this.opts.tty) {
      if (e.service) {
        // The service's own output describes what its current stage is doing.
        const row = this.rows.get(e.service);
        if (row && !FINISHED.includes(row.stage)) row.message = e.line.trim();
      } else if (e.source === "terraform") {
        if (TF_PROGRESS.test(e.line.trim())) this.footer = `terraform: ${e.line.trim()}`;
      } else if (e.line.trim()) this.footer = `${e.source}: ${e.line.trim()}`;
      return;
    }
    // Quiet: build and terraform output (and health polling) only with --verbose; iac's own
    // notes about the terraform state ("iac: …": repaired, reconciled) are always shown.
    const ownNote = e.source === "terraform" && e.line.startsWith("iac: ");
    if (!this.opts.verbose && QUIET_SOURCES.includes(e.source) && !ownNote) return;
    const who = e.service ? `${e.service} ` : "";
    this.write(`  ${who}${e.source}: ${e.line}\n`);
  }

  /** The lines of the live view, already fitted to the terminal (width and height). */
  frame(): string[] {
    const t = this.now();
    const width = Math.max(20, (this.opts.columns?.() ?? process.stderr.columns) || 80) - 1;
    const height = Math.max(3, (this.opts.rows?.() ?? process.stderr.rows) || 24);
    const all = [...this.rows.values()];
    const nameWidth = Math.min(20, Math.max(4, ...all.map((r) => r.name.length)));
    const render = (r: Row): string => {
      const elapsed = FINISHED.includes(r.stage) ? "" : fmtElapsed(t - r.since);
      const mark = r.stage === "done" ? "✔" : r.stage === "failed" ? "✖" : "…";
      const colour =
        r.stage === "done" ? this.c.green : r.stage === "failed" ? this.c.red : this.c.cyan;
      const name = truncate(r.name, nameWidth).padEnd(nameWidth);
      const headWidth = 2 + nameWidth + 1 + 7 + 1 + 6 + 2;
      const message = truncate(r.message.split("\n")[0] ?? "", width - headWidth);
      return (
        `${colour(mark)} ${name} ${colour(r.stage.padEnd(7))} ${this.c.dim(elapsed.padStart(6))}  ` +
        (r.stage === "failed" ? this.c.red(message) : message)
      ).trimEnd();
    };
    // Room for rows: the terminal minus the footer and the line the cursor rests on.
    const room = height - 2;
    let shown = all;
    const lines: string[] = [];
    if (all.length > room) {
      const finished = all.filter((r) => FINISHED.includes(r.stage));
      shown = all.filter((r) => !FINISHED.includes(r.stage));
      const ok = finished.filter((r) => r.stage === "done").length;
      const bad = finished.length - ok;
      if (finished.length > 0)
        lines.push(
          `${this.c.green("✔")} ${ok} done` +
            (bad ? `, ${this.c.red("✖")} ${bad} failed (listed at the end)` : ""),
        );
      const left = room - lines.length;
      if (shown.length > left) {
        const hidden = shown.length - (left - 1);
        shown = shown.slice(0, Math.max(0, left - 1));
        lines.push(...shown.map(render), this.c.dim(`… ${hidden} more in progress`));
        shown = [];
      }
    }
    lines.push(...shown.map(render));
    if (this.footer) lines.push(this.c.dim(truncate(`  ${this.footer}`, width)));
    return lines;
  }

  private redraw(): void {
    if (!this.opts.tty || this.stopped) return;
    const lines = this.frame();
    let out = this.drawn > 0 ? `\x1b[${this.drawn}F` : "";
    out += lines.map((l) => `\x1b[2K${l}`).join("\n") + "\n";
    // Clear what is left of a taller previous frame.
    if (this.drawn > lines.length) out += "\x1b[J";
    this.write(out);
    this.drawn = lines.length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.redraw();
    this.stopped = true;
  }
}

/** The visible width of a string (ANSI colour codes do not count). */
export function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}

export interface TableOptions {
  /** Total width to fit (default: no limit). Cells of `shrink` columns are cut with "…". */
  width?: number;
  /** Column indexes that may be truncated, widest first. */
  shrink?: number[];
  /** Column indexes dropped when every row is empty there (e.g. ERROR). */
  optional?: number[];
}

/** A fixed-width table (final summaries), fitted to `width` by truncating long cells. */
export function table(headers: string[], rows: string[][], opts: TableOptions = {}): string {
  let keep = headers.map((_, i) => i);
  if (opts.optional)
    keep = keep.filter(
      (i) => !opts.optional!.includes(i) || rows.some((r) => (r[i] ?? "").trim() !== ""),
    );
  const hs = keep.map((i) => headers[i]!);
  const rs = rows.map((r) => keep.map((i) => (r[i] ?? "").split("\n")[0]!));
  const widths = hs.map((h, i) => Math.max(h.length, ...rs.map((r) => visibleLength(r[i]!))));
  if (opts.width) {
    const shrink = (opts.shrink ?? []).map((i) => keep.indexOf(i)).filter((i) => i >= 0);
    const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
    // Shrink the widest shrinkable column first, never below its header (or 8).
    for (let guard = 0; total() > opts.width && guard < 10_000; guard++) {
      const candidates = shrink.filter((i) => widths[i]! > Math.max(hs[i]!.length, 8));
      if (candidates.length === 0) break;
      const widest = candidates.reduce((a, b) => (widths[b]! > widths[a]! ? b : a));
      widths[widest]! -= 1;
    }
  }
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const cell = visibleLength(c) > widths[i]! ? truncate(c, widths[i]!) : c;
        return cell + " ".repeat(Math.max(0, widths[i]! - visibleLength(cell)));
      })
      .join("  ")
      .trimEnd();
  return [line(hs), line(widths.map((w) => "-".repeat(w))), ...rs.map(line)].join("\n") + "\n";
}
