// Scenario 3 of issue 18: terraform state lost or corrupted. A half-written state is restored
// from the backup, a truncated one with no backup is rebuilt (import/remove of what carries the
// project's labels), and a deleted state folder neither hides the running services from
// `iac health` nor, once adopted (issue 13: deploy stops and names adopt), moves their host ports.
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProject, SERVE, parseReport, removeFaultImages } from "./harness.js";

const p = new FaultProject();
let ports: Record<string, number | undefined> = {};

beforeAll(async () => {
  await p.setup({ c: SERVE, d: SERVE });
});
afterAll(async () => {
  await p.cleanup();
  await removeFaultImages(p.slugs);
});

const stateFile = () => path.join(p.stateDir, "terraform.tfstate");

function portsOf(stdout: string): Record<string, number | undefined> {
  return Object.fromEntries(parseReport(stdout).services.map((s) => [s.name, s.port]));
}

describe("fault: lost or corrupted terraform state", () => {
  it("deploys", async () => {
    const res = await p.deploy();
    expect(res.code, res.stderr).toBe(0);
    ports = portsOf(res.stdout);
  });

  it("a half-written state is restored from the backup, named in the output", async () => {
    const text = await readFile(stateFile(), "utf8");
    await writeFile(stateFile(), text.slice(0, Math.floor(text.length / 2)));
    const res = await p.deploy();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/terraform state .* was broken.*restored from .*backup/);
    expect(portsOf(res.stdout)).toEqual(ports);
  });

  it("a truncated state with no backup is rebuilt from the labelled resources", async () => {
    for (const f of ["terraform.tfstate.backup", "terraform.tfstate.iac-backup"]) {
      await rm(path.join(p.stateDir, f), { force: true });
    }
    await writeFile(stateFile(), "");
    const res = await p.deploy();
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/not in terraform state/);
    expect(portsOf(res.stdout)).toEqual(ports);
  });

  it("a deleted state folder: health still finds the services, a redeploy stops naming adopt; after adopt it keeps their ports", async () => {
    await rm(p.stateDir, { recursive: true, force: true });
    const health = await p.iac(["health", "--output", "json"]);
    expect(health.code, health.stderr).toBe(0);
    const services = (
      JSON.parse(health.stdout) as { services: { name: string; status: string; port: number }[] }
    ).services;
    expect(Object.fromEntries(services.map((s) => [s.name, [s.status, s.port]]))).toEqual({
      c: ["SERVING", ports.c],
      d: ["SERVING", ports.d],
    });
    // No state at all on this machine (issue 13): deploy stops before terraform and names
    // adopt and destroy; after `iac adopt` a redeploy keeps the ports.
    const refused = await p.deploy();
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/iac adopt --project/);
    expect(refused.stderr).toMatch(/iac destroy --project/);
    const adopted = await p.iac(["adopt", "--output", "json"]);
    expect(adopted.code, adopted.stderr).toBe(0);
    const res = await p.deploy();
    expect(res.code, res.stderr).toBe(0);
    expect(portsOf(res.stdout)).toEqual(ports);
  });
});
