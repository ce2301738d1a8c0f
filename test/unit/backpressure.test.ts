// WritableFlow: a log stream pauses while stdout is over its high-water mark and resumes on
// drain; many paused streams share one drain listener.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { WritableFlow } from "../../src/cli/backpressure.js";

/** A writable whose writes complete only when `release()` is called (a stalled pipe). */
function stalled(highWaterMark = 16) {
  const pending: (() => void)[] = [];
  const out = new Writable({
    highWaterMark,
    write(_chunk, _enc, cb) {
      pending.push(cb);
    },
  });
  return { out, release: () => pending.splice(0).forEach((cb) => cb()) };
}

describe("WritableFlow", () => {
  it("is full while the writable needs a drain, and resumes every waiter on drain", async () => {
    const { out, release } = stalled();
    const flow = new WritableFlow(out);
    expect(flow.full()).toBe(false);
    out.write("x".repeat(32));
    expect(flow.full()).toBe(true);
    const resumed: string[] = [];
    for (const name of ["a", "b", "c"]) flow.onDrain(() => resumed.push(name));
    expect(out.listenerCount("drain")).toBe(1);
    expect(resumed).toEqual([]);
    release();
    await new Promise((r) => setImmediate(r));
    expect(resumed).toEqual(["a", "b", "c"]);
    expect(flow.full()).toBe(false);
    expect(out.listenerCount("drain")).toBe(0);
  });

  it("resumes at once when the writable has drained already", () => {
    const { out } = stalled();
    const flow = new WritableFlow(out);
    let resumed = false;
    flow.onDrain(() => (resumed = true));
    expect(resumed).toBe(true);
  });
});
