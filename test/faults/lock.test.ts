// Scenario 5 of issue 18: the project lock can never be held twice. Several real processes race
// for (a) a lock whose holder died (stale takeover) and (b) a live lock taken and released in a
// loop; a holder must never find another holder inside its critical section.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireLock } from "../../src/platform/lock.js";
import { ROOT } from "./harness.js";

const WORKER = path.join(import.meta.dirname, "lock-worker.ts");
const WORKERS = 4;

class Worker {
  readonly child: ChildProcess;
  private pending: ((line: string) => void)[] = [];
  constructor() {
    this.child = spawn(process.execPath, ["--import", "tsx", WORKER], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: this.child.stdout! }).on("line", (l) => this.pending.shift()?.(l));
  }
  ask(cmd: string): Promise<string> {
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.child.stdin!.write(cmd + "\n");
    });
  }
}

let dir: string;
let workers: Worker[];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-lock-stress-"));
  workers = Array.from({ length: WORKERS }, () => new Worker());
  await Promise.all(workers.map((w) => w.ask("ping")));
}, 60_000);
afterAll(async () => {
  for (const w of workers ?? []) w.child.kill();
  await rm(dir, { recursive: true, force: true });
});

/** A lock left by a process that no longer exists (the way a crashed iac leaves it). */
async function staleLock(file: string): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER, "hold-and-die", file], {
    cwd: ROOT,
    stdio: "ignore",
  });
  await new Promise((r) => child.on("close", r));
}

describe("fault: project lock", () => {
  it("a stale lock is taken over by exactly one of several racing processes (100 rounds)", async () => {
    let doubleWins = 0;
    let noWinner = 0;
    const rounds = 100;
    const base = path.join(dir, "stale");
    await mkdir(base);
    // One dead holder is enough: its pid stays dead, its lock is copied into every round.
    const template = path.join(base, "template.lock");
    await staleLock(template);
    for (let r = 0; r < rounds; r++) {
      const file = path.join(base, `r${r}.lock`);
      await workers[0]!.ask(`copy ${template} ${file}`);
      const answers = await Promise.all(workers.map((w) => w.ask(`try ${file}`)));
      const winners = answers.filter((a) => a === "won").length;
      if (winners > 1) doubleWins++;
      if (winners === 0) noWinner++;
    }
    expect({ doubleWins, noWinner }).toEqual({ doubleWins: 0, noWinner: 0 });
  }, 120_000);

  it("a live lock is never held by two processes at once (workers loop acquire/release)", async () => {
    const file = path.join(dir, "live.lock");
    const answers = await Promise.all(workers.map((w) => w.ask(`loop ${file} 150`)));
    // Each worker answers "<acquired> <overlaps>": an overlap is another holder seen inside
    // the critical section.
    const overlaps = answers.reduce((n, a) => n + Number(a.split(" ")[1]), 0);
    const acquired = answers.reduce((n, a) => n + Number(a.split(" ")[0]), 0);
    expect(overlaps).toBe(0);
    expect(acquired).toBeGreaterThan(0);
  }, 120_000);

  it("the lock file never exists without its content", async () => {
    const file = path.join(dir, "content.lock");
    const release = await acquireLock(file, "deploy");
    try {
      const entries = await readdir(path.dirname(file));
      expect(entries.some((e) => e.startsWith("content.lock"))).toBe(true);
      // A second acquire names the holder (so the content was there from the first instant).
      const err = await acquireLock(file, "destroy").catch((e: unknown) => e);
      expect(String(err)).toMatch(new RegExp(`deploy holds the project lock.*pid ${process.pid}`));
    } finally {
      await release();
    }
    // Released: a new holder gets it at once.
    const again = await acquireLock(file, "destroy");
    await again();
  });
});
