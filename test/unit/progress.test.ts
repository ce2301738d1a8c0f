// The human progress view: plain lines off a TTY, a redrawn per-service table on a TTY.
import { describe, expect, it } from "vitest";
import { logEvent, stageEvent } from "../../src/kernel/events.js";
import { ProgressView } from "../../src/cli/progress.js";

function capture(tty: boolean, verbose = false) {
  const out: string[] = [];
  let t = 1_000;
  const view = new ProgressView({ tty, verbose, write: (s) => out.push(s), now: () => t });
  return { view, out, advance: (ms: number) => (t += ms) };
}

describe("ProgressView", () => {
  it("prints timestamped plain lines off a TTY, build output only when verbose", () => {
    const { view, out, advance } = capture(false);
    view.sink(stageEvent("fetch", "api"));
    advance(1500);
    view.sink(stageEvent("build", "api", "python-file: python main.py"));
    view.sink(logEvent("build", "Step 1/9 : FROM base", "api"));
    view.sink(logEvent("terraform", "Apply complete!"));
    view.stop();
    expect(out).toEqual([
      "[0.0s] api: fetch\n",
      "[1.5s] api: build — python-file: python main.py\n",
      "  terraform: Apply complete!\n",
    ]);
  });

  it("shows build output with --verbose", () => {
    const { view, out } = capture(false, true);
    view.sink(logEvent("build", "Step 1/9 : FROM base", "api"));
    view.stop();
    expect(out).toEqual(["  api build: Step 1/9 : FROM base\n"]);
  });

  it("redraws one row per service with stage and elapsed time on a TTY", () => {
    const { view, out, advance } = capture(true);
    view.sink(stageEvent("build", "api"));
    view.sink(stageEvent("fetch", "worker"));
    advance(2_000);
    view.sink(stageEvent("done", "api", "SERVING"));
    view.stop();
    const last = out.at(-1)!;
    expect(last.startsWith("\x1b[2F")).toBe(true); // moves up over the previous two rows
    expect(last).toMatch(/✔ api\s+done\s+SERVING/);
    expect(last).toMatch(/… worker\s+fetch\s+2\.0s/);
  });
});
