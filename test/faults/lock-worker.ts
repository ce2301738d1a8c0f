// A process racing for project locks (driven by test/faults/lock.test.ts over stdin/stdout).
//   ping                  -> pong
//   copy SRC DST          copies a lock (file or folder) -> ok
//   try FILE              one acquire; the winner keeps holding -> won | lost
//   loop FILE N           N x (acquire with retry, critical section, release) -> "<acquired> <overlaps>"
//   (argv) hold-and-die FILE   acquire, then exit without releasing (a crashed holder)
import { cp, open, rm } from "node:fs/promises";
import { createInterface } from "node:readline";
import { LockedError, acquireLock } from "../../src/platform/lock.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function loop(file: string, n: number): Promise<string> {
  let acquired = 0;
  let overlaps = 0;
  const marker = `${file}.critical`;
  for (let i = 0; i < n; i++) {
    let release: (() => Promise<void>) | undefined;
    for (let tries = 0; tries < 2000 && !release; tries++) {
      try {
        release = await acquireLock(file, "deploy");
      } catch (err) {
        if (!(err instanceof LockedError)) throw err;
        await sleep(Math.random() * 3);
      }
    }
    if (!release) continue;
    acquired++;
    try {
      const h = await open(marker, "wx");
      await h.close();
      await sleep(1);
      await rm(marker);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") overlaps++;
      else throw err;
    }
    await release();
  }
  return `${acquired} ${overlaps}`;
}

async function handle(line: string): Promise<string> {
  const [cmd, a, b] = line.trim().split(" ");
  switch (cmd) {
    case "ping":
      return "pong";
    case "copy":
      await cp(a!, b!, { recursive: true });
      return "ok";
    case "try":
      try {
        await acquireLock(a!, "deploy");
        return "won";
      } catch (err) {
        if (err instanceof LockedError) return "lost";
        return `error ${String(err)}`;
      }
    case "loop":
      return loop(a!, Number(b));
    default:
      return `error unknown command ${cmd}`;
  }
}

if (process.argv[2] === "hold-and-die") {
  await acquireLock(process.argv[3]!, "deploy");
  process.exit(0);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  void handle(line)
    .catch((err: unknown) => `error ${String(err)}`)
    .then((out) => process.stdout.write(out + "\n"));
});
