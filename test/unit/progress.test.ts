// The human progress view: quiet plain lines off a TTY, a redrawn per-service table on a TTY
// that shows each row's current stage, fits the terminal and colours only when asked.
import { describe, expect, it } from "vitest";
import { logEvent, stageEvent } from "../../src/kernel/events.js";
import { ProgressView, table, visibleLength } from "../../src/cli/progress.js";
import { palette, useColor } from "../../src/cli/style.js";
import { failureDetails } from "../../src/cli/report.js";
import { reportError } from "../../src/cli/report-error.js";
import { IacError } from "../../src/kernel/errors.js";

function capture(tty: boolean, verbose = false, size = { columns: 80, rows: 24 }, color = false) {
  const out: string[] = [];
  let t = 1_000;
  const view = new ProgressView({
    tty,
    verbose,
    color,
    write: (s) => out.push(s),
    now: () => t,
    columns: () => size.columns,
    rows: () => size.rows,
  });
  return { view, out, advance: (ms: number) => (t += ms) };
}

describe("ProgressView off a TTY (quiet by default)", () => {
  it("prints only project steps and each service's outcome; no build or terraform output", () => {
    const { view, out, advance } = capture(false);
    view.sink(stageEvent("fetch", "api", "gh:o/api"));
    view.sink(stageEvent("build", "api", "python-file: python main.py"));
    view.sink(logEvent("build", "Step 1/9 : FROM base", "api"));
    advance(1500);
    view.sink(stageEvent("plan", undefined, "terraform plan (1 services)"));
    view.sink(logEvent("terraform", "Apply complete!"));
    view.sink(stageEvent("done", "api", "SERVING"));
    view.stop();
    expect(out).toEqual(["[1.5s] plan — terraform plan (1 services)\n", "[1.5s] api: SERVING\n"]);
  });

  it("shows every stage, build and terraform line with --verbose", () => {
    const { view, out } = capture(false, true);
    view.sink(stageEvent("build", "api"));
    view.sink(logEvent("build", "Step 1/9 : FROM base", "api"));
    view.sink(logEvent("terraform", "Apply complete!"));
    view.stop();
    expect(out).toEqual([
      "[0.0s] api: build\n",
      "  api build: Step 1/9 : FROM base\n",
      "  terraform: Apply complete!\n",
    ]);
  });
});

describe("ProgressView on a TTY", () => {
  it("redraws one row per service with its current stage and elapsed time", () => {
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

  it("moves prepared rows onto the project's terraform step, with resource progress in the footer", () => {
    const { view } = capture(true);
    view.sink(stageEvent("certs", "api", "certificate for spiffe://p/api"));
    view.sink(stageEvent("apply", undefined, "terraform apply: 2 to add"));
    view.sink(logEvent("terraform", "}"));
    view.sink(logEvent("terraform", 'docker_container.app["api"]: Creating...'));
    view.sink(logEvent("terraform", "  + image = (known after apply)"));
    const frame = view.frame();
    view.stop();
    expect(frame[0]).toMatch(/… api\s+apply\s+0\.0s\s+terraform apply: 2 to add/);
    expect(frame.at(-1)).toBe('  terraform: docker_container.app["api"]: Creating...');
  });

  it("shows the health wait as the row's message (health 12s/90s · restarts 1)", () => {
    const { view } = capture(true);
    view.sink(stageEvent("health", "api", "health 0s/90s"));
    view.sink(logEvent("health", "health 12s/90s · restarts 1 · restarting", "api"));
    expect(view.frame()[0]).toMatch(/health 12s\/90s · restarts 1/);
    view.stop();
  });

  it("never exceeds the terminal: 12 services in 8 rows collapse finished rows into a count", () => {
    const { view, out } = capture(true, false, { columns: 60, rows: 8 });
    for (let i = 0; i < 12; i++) view.sink(stageEvent("build", `svc${i}`));
    for (let i = 0; i < 9; i++) view.sink(stageEvent("done", `svc${i}`, "SERVING"));
    view.sink(stageEvent("failed", "svc9", "main() exited with code 3"));
    for (const chunk of out) {
      const lines = chunk.split("\n").length - 1;
      expect(lines).toBeLessThanOrEqual(8 - 1);
    }
    const frame = view.frame();
    expect(frame[0]).toBe("✔ 9 done, ✖ 1 failed (listed at the end)");
    expect(frame.filter((l) => /svc1[01]/.test(l))).toHaveLength(2);
    for (const l of frame) expect(visibleLength(l)).toBeLessThanOrEqual(59);
    view.stop();
  });

  it("colours marks only when colour is on", () => {
    const plain = capture(true, false, { columns: 80, rows: 24 }, false);
    plain.view.sink(stageEvent("failed", "api", "boom"));
    expect(plain.view.frame().join("\n")).not.toContain("\x1b[");
    const coloured = capture(true, false, { columns: 80, rows: 24 }, true);
    coloured.view.sink(stageEvent("failed", "api", "boom"));
    expect(coloured.view.frame()[0]).toContain("\x1b[31m✖\x1b[39m");
    plain.view.stop();
    coloured.view.stop();
  });
});

describe("useColor", () => {
  it.each([
    [{ isTTY: true }, {}, undefined, true],
    [{ isTTY: false }, {}, undefined, false],
    [{ isTTY: true }, {}, "1", false],
    [{ isTTY: true }, { color: false }, undefined, false],
    [{ isTTY: true }, {}, "", true],
  ])("%j %j NO_COLOR=%s -> %s", (stream, flags, env, expected) => {
    expect(useColor(stream, flags, env)).toBe(expected);
  });
});

describe("table", () => {
  it("fits 80 columns by cutting long cells with … and drops an empty optional column", () => {
    const out = table(
      ["SERVICE", "STATUS", "ENTRYPOINT", "ERROR"],
      [["api", "SERVING", "python-main-function: python -c " + "x".repeat(80), ""]],
      { width: 80, shrink: [2, 3], optional: [3] },
    );
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toBe("SERVICE  STATUS   ENTRYPOINT");
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(lines[2]).toMatch(/…$/);
  });
});

describe("app text never drives the terminal (harden's stripControls, after the cli merge)", () => {
  it("strips escape sequences from verbose log lines and stage messages", () => {
    const { view, out } = capture(false, true);
    view.sink(logEvent("build", "ok\x1b]0;pwned\x07\x1b[2J done", "api"));
    view.sink(stageEvent("failed", "api", "boom\x1b[1A\x1b[K"));
    view.stop();
    expect(out.join("")).not.toContain("\x1b");
    expect(out.join("")).toContain("ok done");
    expect(out.join("")).toContain("boom");
  });

  it("strips them from a failure's error and main()'s last lines below the table", () => {
    const text = failureDetails(
      [
        {
          name: "api",
          slug: "gh:o/api",
          status: "FAILED",
          error: "exit 3\x1b[2J",
          logs: ["Traceback\x1b]0;title\x07", "\x9b31mred"],
        },
      ],
      palette(false),
    );
    expect(text).not.toContain("\x1b");
    expect(text).not.toContain("\x9b");
    expect(text).toContain("api: exit 3");
    expect(text).toContain("| Traceback");
  });

  it("keeps a multi-line error's lines (printed whole, not flattened into one line)", () => {
    const error = "terraform apply failed (exit 1):\nError: boom\x1b[2K\r\n  on main.tf line 48";
    const text = failureDetails(
      [{ name: "api", slug: "gh:o/api", status: "FAILED", error }],
      palette(false),
    );
    expect(text).toContain(
      "api: terraform apply failed (exit 1):\nError: boom\n  on main.tf line 48\n",
    );
  });

  it("iac: error: keeps the message's lines and its hint on its own line", () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => {
      written.push(s);
      return true;
    }) as typeof process.stderr.write;
    try {
      reportError(new IacError("terraform plan failed:\nError: one\x1b[31m\nError: two", "fix it"));
    } finally {
      process.stderr.write = write;
    }
    expect(written.join("")).toBe(
      "iac: error: terraform plan failed:\nError: one\nError: two\n  hint: fix it\n",
    );
  });
});
