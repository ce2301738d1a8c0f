// Registry of operations (deploys, rollbacks, destroys) started through the API: their status,
// their recorded events (for replay, then follow) and the per-project lock that turns a second
// concurrent operation on the same project into 409. Finished records are persisted (one JSON
// file each under <stateDir>/.api/deployments/) and loaded again when `iac serve` restarts.
import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../platform/fs.js";
import type { DeployEvent, EventSink } from "../kernel/events.js";
import { type ErrorCode, errorMessage, IacError } from "../kernel/errors.js";

export type OperationKind = "deploy" | "destroy" | "rollback";
export type OperationStatus = "running" | "succeeded" | "failed" | "cancelled";

/** What gets streamed: the pipeline's events plus a terminal `error` when it threw. */
export type RecordedEvent =
  DeployEvent | { type: "error"; ts: string; message: string; hint?: string };

export interface StoredEvent {
  seq: number;
  event: RecordedEvent;
}

type Listener = { onEvent: (e: StoredEvent) => void; onEnd: () => void };

/** What is written to disk per finished operation. */
interface OperationRecord {
  id: string;
  kind: OperationKind;
  project: string;
  status: OperationStatus;
  created_at: string;
  finished_at?: string;
  services: Array<{ name: string; slug: string }>;
  result?: unknown;
  error?: { message: string; hint?: string };
  events: StoredEvent[];
  dropped: number;
}

export class Operation {
  id: string = randomUUID();
  createdAt = new Date().toISOString();
  status: OperationStatus = "running";
  finishedAt?: string;
  result?: unknown;
  error?: { message: string; hint?: string };
  readonly events: StoredEvent[] = [];
  /** Events dropped from the front when the record grew past its cap. */
  dropped = 0;
  readonly controller = new AbortController();
  done!: Promise<void>;
  private readonly listeners = new Set<Listener>();

  constructor(
    readonly kind: OperationKind,
    readonly project: string,
    readonly services: Array<{ name: string; slug: string }>,
    private readonly maxEvents: number,
  ) {}

  get finished(): boolean {
    return this.status !== "running";
  }

  push(event: RecordedEvent): void {
    const stored = { seq: this.events.length + this.dropped + 1, event };
    this.events.push(stored);
    if (this.events.length > this.maxEvents) {
      this.events.shift();
      this.dropped++;
    }
    for (const l of this.listeners) l.onEvent(stored);
  }

  /** Events with seq > afterSeq, for replay. */
  since(afterSeq: number): StoredEvent[] {
    return this.events.filter((e) => e.seq > afterSeq);
  }

  /** Follow new events; returns the unsubscribe function. `onEnd` fires once when finished. */
  subscribe(onEvent: (e: StoredEvent) => void, onEnd: () => void): () => void {
    if (this.finished) {
      onEnd();
      return () => {};
    }
    const l = { onEvent, onEnd };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  finish(status: OperationStatus): void {
    this.status = status;
    this.finishedAt = new Date().toISOString();
    for (const l of [...this.listeners]) l.onEnd();
    this.listeners.clear();
  }

  toRecord(): OperationRecord {
    return {
      id: this.id,
      kind: this.kind,
      project: this.project,
      status: this.status,
      created_at: this.createdAt,
      finished_at: this.finishedAt,
      services: this.services,
      result: this.result,
      error: this.error,
      events: this.events,
      dropped: this.dropped,
    };
  }

  /** A finished operation read back from disk; one that was running when serve stopped failed. */
  static fromRecord(r: OperationRecord, maxEvents: number): Operation {
    const op = new Operation(r.kind, r.project, r.services, maxEvents);
    op.id = r.id;
    op.createdAt = r.created_at;
    op.result = r.result;
    op.error = r.error;
    op.events.push(...r.events);
    op.dropped = r.dropped;
    op.status = r.status === "running" ? "failed" : r.status;
    op.finishedAt = r.finished_at ?? r.created_at;
    if (r.status === "running")
      op.error = { message: "interrupted: iac serve stopped while it ran" };
    return op;
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      kind: this.kind,
      project: this.project,
      status: this.status,
      created_at: this.createdAt,
      finished_at: this.finishedAt,
      services: this.services,
      events: this.events.length + this.dropped,
      result: this.result,
      error: this.error,
    };
  }
}

export class ProjectBusyError extends IacError {
  override name = "ProjectBusyError";
  override readonly code: ErrorCode = "busy";
  constructor(readonly running: Operation) {
    super(
      `project '${running.project}' already has a ${running.kind} in progress (${running.id})`,
      `wait for it to finish: GET /deployments/${running.id}`,
    );
  }
}

export class TooManyOperationsError extends IacError {
  override name = "TooManyOperationsError";
  constructor(max: number) {
    super(
      `${max} deploys/destroys are already running on this server`,
      "wait for one to finish (GET /deployments), then retry",
    );
  }
}

export interface StartOptions<T> {
  kind: OperationKind;
  project: string;
  services?: Array<{ name: string; slug: string }>;
  run: (onEvent: EventSink, signal: AbortSignal) => Promise<T>;
  /** Status for a run that returned normally (default: succeeded). */
  classify?: (result: T) => OperationStatus;
}

export class DeploymentRegistry {
  private readonly ops = new Map<string, Operation>();
  private readonly active = new Map<string, Operation>();

  constructor(
    private readonly opts: {
      maxRecords?: number;
      maxEventsPerRecord?: number;
      /** Operations running at once, over all projects (each holds builds, terraform, memory). */
      maxActive?: number;
      /** Where finished records are persisted; none = in memory only. */
      dir?: string;
    } = {},
  ) {
    if (opts.dir) this.load(opts.dir);
  }

  private load(dir: string): void {
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith(".json"));
    } catch {
      return;
    }
    const records: OperationRecord[] = [];
    for (const n of names) {
      try {
        records.push(JSON.parse(readFileSync(path.join(dir, n), "utf8")) as OperationRecord);
      } catch {
        /* a torn file: skipped */
      }
    }
    records.sort((a, b) => a.created_at.localeCompare(b.created_at));
    for (const r of records)
      this.ops.set(r.id, Operation.fromRecord(r, this.opts.maxEventsPerRecord ?? 20_000));
  }

  private async persist(op: Operation): Promise<void> {
    if (!this.opts.dir) return;
    await writeFileAtomic(
      path.join(this.opts.dir, `${op.id}.json`),
      JSON.stringify(op.toRecord()),
      0o600,
    ).catch(() => undefined); // a full disk must not fail the operation itself
  }

  get(id: string): Operation | undefined {
    return this.ops.get(id);
  }

  list(): Operation[] {
    return [...this.ops.values()].reverse();
  }

  running(project: string): Operation | undefined {
    return this.active.get(project);
  }

  /** Starts `run` in the background; throws ProjectBusyError when the project is busy. */
  start<T>(o: StartOptions<T>): Operation {
    const busy = this.active.get(o.project);
    if (busy) throw new ProjectBusyError(busy);
    const max = this.opts.maxActive ?? 4;
    if (this.active.size >= max) throw new TooManyOperationsError(max);
    const op = new Operation(
      o.kind,
      o.project,
      o.services ?? [],
      this.opts.maxEventsPerRecord ?? 20_000,
    );
    this.ops.set(op.id, op);
    this.active.set(o.project, op);
    this.prune();
    let sawResult = false;
    const onEvent: EventSink = (e) => {
      if (op.finished) return;
      if (e.type === "result") sawResult = true;
      op.push(e);
    };
    op.done = (async () => {
      try {
        const result = await o.run(onEvent, op.controller.signal);
        op.result = result;
        if (!sawResult) op.push({ type: "result", ts: new Date().toISOString(), result });
        op.finish(
          op.controller.signal.aborted ? "cancelled" : (o.classify?.(result) ?? "succeeded"),
        );
      } catch (err) {
        op.error = {
          message: errorMessage(err),
          hint: err instanceof IacError ? err.hint : undefined,
        };
        op.push({ type: "error", ts: new Date().toISOString(), ...op.error });
        op.finish(op.controller.signal.aborted ? "cancelled" : "failed");
      } finally {
        if (this.active.get(o.project) === op) this.active.delete(o.project);
        await this.persist(op);
      }
    })();
    return op;
  }

  /** Drops the oldest finished records beyond the cap. */
  private prune(): void {
    const max = this.opts.maxRecords ?? 100;
    if (this.ops.size <= max) return;
    for (const [id, op] of this.ops) {
      if (this.ops.size <= max) break;
      if (op.finished) {
        this.ops.delete(id);
        if (this.opts.dir) rmSync(path.join(this.opts.dir, `${id}.json`), { force: true });
      }
    }
  }

  /** Shutdown: waits up to `graceMs` for running operations, then aborts them and waits again briefly. */
  async shutdown(graceMs: number): Promise<void> {
    const running = [...this.active.values()];
    if (running.length === 0) return;
    const all = Promise.allSettled(running.map((op) => op.done));
    const timeout = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
    await Promise.race([all, timeout(graceMs)]);
    for (const op of running)
      if (!op.finished) op.controller.abort(new Error("iac serve is shutting down"));
    await Promise.race([all, timeout(5_000)]);
  }
}
