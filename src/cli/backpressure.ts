// Backpressure from stdout to a log stream: `iac logs --follow | slow-reader` must neither grow
// without bound (Node buffers every write to a pipe that is not read) nor lose lines silently.
// While stdout's buffer is over its high-water mark the gRPC streams are paused; the runner's
// ring buffer then drops its oldest lines and says so with an "N lines skipped" line.
import type { LogFlow } from "../runtime/client.js";

export interface DrainingWritable {
  readonly writableNeedDrain: boolean;
  once(event: "drain", listener: () => void): unknown;
}

export class WritableFlow implements LogFlow {
  private waiting: (() => void)[] = [];

  constructor(private readonly out: DrainingWritable) {}

  full(): boolean {
    return this.out.writableNeedDrain;
  }

  /** Calls `resume` once the writable drained (at once when it already has). */
  onDrain(resume: () => void): void {
    if (!this.out.writableNeedDrain) return resume();
    this.waiting.push(resume);
    // One listener for every paused stream (a project can have many services).
    if (this.waiting.length === 1) this.out.once("drain", this.release);
  }

  private readonly release = (): void => {
    for (const resume of this.waiting.splice(0)) resume();
  };
}
