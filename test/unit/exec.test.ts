import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runProcess, runTool } from "../../src/platform/exec.js";
import { ToolError } from "../../src/kernel/errors.js";

describe("runProcess: the one child-process runner", () => {
  it("captures stdout whole and keeps stderr lines as the tail", async () => {
    const res = await runProcess(["sh", "-c", 'printf "a\\nb"; echo oops >&2; exit 3']);
    expect(res.code).toBe(3);
    expect(res.stdout.toString()).toBe("");
    // Two pipes: stdout's lines keep their order, stderr's may come before or between them.
    expect(res.output.filter((l) => l !== "oops")).toEqual(["a", "b"]);
    expect(res.output).toContain("oops");
    const captured = await runProcess(["sh", "-c", 'printf "a\\nb"; echo oops >&2'], {
      stdout: "capture",
    });
    expect(captured.stdout.toString()).toBe("a\nb");
    expect(captured.output).toEqual(["oops"]);
  });

  it("a timeout ends the whole process group, also helpers that hold the pipes open", async () => {
    const started = Date.now();
    // The background sleep inherits stdout: without a group kill, 'close' would wait 30 s for it.
    const res = await runProcess(["sh", "-c", "sleep 30 & sleep 30"], { timeoutMs: 300 });
    expect(res.timedOut).toBe(true);
    expect(res.code).toBeNull();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("a tool killed by someone else takes its helpers with it (no orphaned provider)", async () => {
    // The helper detaches from the pipes (like a provider plugin with its own), prints its pid
    // through a file and would sleep on; the tool is then SIGKILLed from outside.
    const dir = mkdtempSync(path.join(tmpdir(), "iac-exec-"));
    const pidFile = path.join(dir, "helper.pid");
    const res = await runProcess(
      ["sh", "-c", `sleep 30 </dev/null >/dev/null 2>&1 & echo $! > ${pidFile}; echo ready; wait`],
      {
        onLine: (line) => {
          if (line !== "ready") return;
          const tool = Number(
            readFileSync(`/proc/${readFileSync(pidFile, "utf8").trim()}/stat`, "utf8").split(
              " ",
            )[3],
          );
          process.kill(tool, "SIGKILL");
        },
      },
    );
    expect(res.signal).toBe("SIGKILL");
    const helper = Number(readFileSync(pidFile, "utf8").trim());
    await new Promise((r) => setTimeout(r, 100));
    const state = (() => {
      try {
        return readFileSync(`/proc/${helper}/stat`, "utf8").split(" ")[2];
      } catch {
        return "gone";
      }
    })();
    expect(["gone", "Z"]).toContain(state);
    rmSync(dir, { recursive: true, force: true });
  });

  it("an abort sends the chosen signal (terraform gets SIGINT to save its state), a hard abort SIGKILL", async () => {
    const abort = new AbortController();
    const sent: string[] = [];
    const pending = runProcess(
      ["sh", "-c", "trap 'echo got INT; exit 130' INT; echo ready; while :; do sleep 0.1; done"],
      {
        signal: abort.signal,
        abortWith: "SIGINT",
        onAbortSent: (sig) => sent.push(sig),
        onLine: (line) => line === "ready" && abort.abort(),
      },
    );
    const res = await pending;
    expect(res.aborted).toBe(true);
    expect(res.code).toBe(130);
    expect(res.output).toContain("got INT");
    expect(sent).toEqual(["SIGINT"]);

    const hard = new AbortController();
    const killed = await runProcess(["sh", "-c", "trap '' INT; echo ready; sleep 30"], {
      hardSignal: hard.signal,
      onLine: () => hard.abort(),
    });
    expect(killed.signal).toBe("SIGKILL");
  });

  it("never starts a process when already aborted", async () => {
    const res = await runProcess(["sh", "-c", "echo started"], { signal: AbortSignal.abort() });
    expect(res).toMatchObject({ aborted: true, code: null, output: [] });
  });

  it("runTool names a tool that cannot be started and how to get it", async () => {
    const err = await runTool(["iac-no-such-tool"], {
      timeoutMs: 1000,
      installHint: "install it",
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).message).toMatch(/cannot run iac-no-such-tool: .*ENOENT/);
    expect((err as ToolError).hint).toBe("install it");
  });
});
