// Scenario 4 of issue 18 (bounded output), the CLI's side: `iac logs --follow` into a reader
// that stalls. Before: the CLI buffered every line it could not write (+2 MB/s, without bound),
// ignored Ctrl-C while stdout held unwritten lines, and lines lost in the runner's ring buffer
// vanished without a word. Now: stdout's backpressure pauses the gRPC stream (so the CLI stays
// small), the runner's buffer drops its oldest lines and says "N lines skipped", the numbering
// around that marker accounts for every line, and Ctrl-C ends the command within a second.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProject, ROOT, removeFaultImages } from "./harness.js";

/** main() that prints nonstop: bursts of 500 numbered 200-byte lines, ~10k lines/s. */
const NOISY = `import sys, time


def main():
    pad = "x" * 200
    i = 0
    while True:
        for _ in range(500):
            print(f"line {i} {pad}")
            i += 1
        sys.stdout.flush()
        time.sleep(0.05)
`;

const p = new FaultProject();

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `iac logs noisy --follow` whose stdout nobody reads until `resume()`. */
function stalledFollow() {
  const child = spawn(
    "node",
    [path.join(ROOT, "bin/iac.js"), "logs", "noisy", "--follow", "--tail", "1"],
    { cwd: p.work, env: p.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout.pause(); // the reader stalls: the pipe fills, then stdout's own buffer
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.on("exit", (code) => resolve({ code, at: Date.now() })),
  );
  return {
    child,
    exited,
    stderr: () => err,
    resume() {
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stdout.resume();
    },
    stdout: () => out,
  };
}

beforeAll(async () => {
  await p.setup({ noisy: NOISY });
  const res = await p.deploy();
  expect(res.code, res.stderr).toBe(0);
}, 300_000);
afterAll(async () => {
  await p.cleanup();
  await removeFaultImages(p.slugs);
});

describe("fault: iac logs --follow into a reader that stalls", () => {
  it("stays small while stalled, then says how many lines it skipped; every line accounted for", async () => {
    const f = stalledFollow();
    await sleep(4_000); // the stream is up and the pipe is full
    const before = rssMb(f.child.pid!);
    await sleep(8_000); // ~80k lines (16 MB) printed meanwhile
    const after = rssMb(f.child.pid!);
    console.log(
      `[follow] iac logs RSS while stalled: ${before.toFixed(0)} -> ${after.toFixed(0)} MB`,
    );
    // Buffering everything would add the 16 MB of text (and more in string overhead).
    expect(after - before).toBeLessThan(5); // before the fix: +12.8 MB in these 8 s

    f.resume();
    const deadline = Date.now() + 30_000;
    while (!/lines skipped/.test(f.stdout()) && Date.now() < deadline) await sleep(200);
    await sleep(1_000); // lines after the marker
    f.child.kill("SIGINT");
    const { code } = await f.exited;
    expect(code, f.stderr()).toBe(130);

    const lines = f.stdout().split("\n").filter(Boolean);
    const at = lines.findIndex((l) => /lines skipped/.test(l));
    expect(at, lines.slice(0, 5).join("\n")).toBeGreaterThan(0);
    const marker = /\[iac-runner\] (\d+) lines skipped: the reader fell behind/.exec(lines[at]!);
    expect(marker, lines[at]).not.toBeNull();
    const num = (l: string) => Number(/^line (\d+) /.exec(l)?.[1] ?? NaN);
    const last = lines
      .slice(0, at)
      .map(num)
      .filter((n) => !Number.isNaN(n))
      .at(-1)!;
    const next = num(lines[at + 1]!);
    // The lines between the last one read and the first one after the marker are exactly the
    // skipped ones: nothing else was lost, nothing duplicated.
    expect(next - last - 1).toBe(Number(marker![1]));
    expect(Number(marker![1])).toBeGreaterThan(10_000);
  }, 120_000);

  it("Ctrl-C ends it within a second while stdout still holds lines nobody reads", async () => {
    const f = stalledFollow();
    await sleep(5_000); // the pipe and stdout's buffer are full; the stream is paused
    expect(f.child.exitCode).toBeNull();
    const sent = Date.now();
    f.child.kill("SIGINT");
    const { code, at } = await f.exited;
    console.log(`[follow] SIGINT -> exit: ${at - sent} ms`);
    expect(code).toBe(130);
    expect(at - sent).toBeLessThan(1_000);
  }, 60_000);

  it("a reader that goes away (| head) ends it quietly", async () => {
    const child = spawn(
      "node",
      [path.join(ROOT, "bin/iac.js"), "logs", "noisy", "--follow", "--tail", "1"],
      { cwd: p.work, env: p.env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.stdout.destroy(); // like `head` exiting: the next writes get EPIPE
    const code = await Promise.race([exited, sleep(10_000).then(() => "still running")]);
    expect(code, err).toBe(0);
    expect(err).not.toMatch(/EPIPE|Error/);
  }, 60_000);
});
