// Project state helpers: atomic tfvars, stable ports, the project lock, bounded map.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/kernel/config.js";
import { mapLimit } from "../../src/platform/limit.js";
import { LockedError, acquireLock } from "../../src/platform/lock.js";
import { assignPorts } from "../../src/stack/ports.js";
import { table } from "../../src/cli/progress.js";
import { readStackVars, stackVars, syncModule, writeStackVars } from "../../src/stack/tfvars.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-state-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("stack vars", () => {
  it("round-trips and leaves no temp files behind", async () => {
    const config = loadConfig({ IAC_SIDECAR: "none", IAC_NETWORK: "net1" });
    const vars = stackVars(config, "p1", {
      a: {
        image: "iac/a:1",
        slug: "gh:o/a",
        commit: "c".repeat(40),
        host_port: 1234,
        cert_dir: "/x",
        envoy_config: "",
        memory_mb: 512,
        cpus: "1.0",
        pids: 256,
        config_hash: "h",
        env: {},
      },
    });
    await writeStackVars(dir, vars);
    expect(await readStackVars(dir)).toEqual(vars);
    expect(vars).toMatchObject({ project: "p1", network_name: "net1", sidecar: "none" });
    // The runner's runtime API is for the control plane only (as Envoy's RBAC rule).
    expect(vars.allowed_callers).toEqual(["spiffe://iac/control-plane"]);
    expect(await readdir(dir)).toEqual(["terraform.tfvars.json"]);
  });

  it("returns undefined when nothing was deployed", async () => {
    expect(await readStackVars(path.join(dir, "nope"))).toBeUndefined();
  });

  it("copies the terraform module into the project dir", async () => {
    await syncModule(dir);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(["main.tf", "outputs.tf", "variables.tf", "versions.tf"]);
  });
});

describe("assignPorts", () => {
  it("keeps ports stable across calls and gives new services distinct ports", async () => {
    const file = path.join(dir, "ports.json");
    const first = await assignPorts(file, ["a", "b"]);
    expect(first.a).not.toBe(first.b);
    const second = await assignPorts(file, ["b", "a", "c"]);
    expect(second.a).toBe(first.a);
    expect(second.b).toBe(first.b);
    expect(new Set(Object.values(second)).size).toBe(3);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual(second);
  });
});

describe("acquireLock", () => {
  it("refuses a second holder and frees on release", async () => {
    const file = path.join(dir, ".lock");
    const release = await acquireLock(file, "deploy");
    await expect(acquireLock(file, "destroy")).rejects.toThrowError(LockedError);
    await expect(acquireLock(file, "destroy")).rejects.toThrow(
      /another deploy holds the project lock/,
    );
    await release();
    const again = await acquireLock(file, "destroy");
    await again();
  });

  it("takes over a lock whose owner died", async () => {
    const file = path.join(dir, ".lock");
    const dead = spawnSync("true").pid!;
    await writeFile(
      file,
      JSON.stringify({
        pid: dead,
        host: (await import("node:os")).hostname(),
        operation: "deploy",
        since: "x",
      }),
    );
    const release = await acquireLock(file, "deploy");
    await release();
  });
});

describe("mapLimit", () => {
  it("never runs more than the limit at once and keeps order", async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 3, 2, 4], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n * 3));
      running--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 30, 20, 40]);
    expect(peak).toBe(2);
  });
});

describe("table", () => {
  it("aligns columns", () => {
    expect(table(["A", "BB"], [["xyz", "1"]])).toBe("A    BB\n---  --\nxyz  1\n");
  });
});
