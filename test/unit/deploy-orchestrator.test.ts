// The deploy orchestrator's own rules, over fake stages (no Docker, git or terraform): real
// state directory, lock, ports and tfvars in a temp dir; the fakes record what was called.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HealthStatus_Status } from "../../src/gen/controlplane.js";
import { type Config, loadConfig } from "../../src/kernel/config.js";
import { IacError } from "../../src/kernel/errors.js";
import type { DeployEvent } from "../../src/kernel/events.js";
import type { ServiceSpec } from "../../src/kernel/types.js";
import { parseSlug } from "../../src/intake/slug.js";
import { deploy, planDeploy } from "../../src/operations/deploy.js";
import type { ContainerState } from "../../src/operations/noop.js";
import type { Stages } from "../../src/operations/stages.js";
import { projectDir, readStackVars } from "../../src/stack/tfvars.js";

let dir: string;
let config: Config;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-orch-"));
  config = loadConfig({ IAC_STATE_DIR: path.join(dir, "state"), IAC_SIDECAR: "none" });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = (name: string): ServiceSpec => ({ name, slug: parseSlug(`gh:acme/${name}`), env: {} });

/** A fake Docker engine: what terraform apply leaves running, as the list call shows it. */
interface FakeEngine {
  containers: ContainerState[];
  applies: number;
}
const newEngine = (): FakeEngine => ({ containers: [], applies: 0 });

/**
 * Fake stages: services named in `failing` fail at build; terraform and health are recorded.
 * `apply` writes a state file and puts the stack's containers on `engine` (running).
 */
function fakeStages(failing: string[] = [], engine: FakeEngine = newEngine()) {
  const calls: string[] = [];
  const certFile = path.join(dir, "cert.pem");
  const stages: Stages = {
    preflight: async (c) => {
      calls.push("preflight");
      return c;
    },
    fetch: async (s) => {
      calls.push(`fetch ${s.name}`);
      return { dir, root: dir, commit: s.name.padEnd(40, "0").slice(0, 40), via: "cache" };
    },
    detect: async () => ({
      kind: "python-file",
      argv: ["python", "main.py"],
      rule: "main-py",
      installProject: false,
    }),
    build: async (s) => {
      calls.push(`build ${s.name}`);
      if (failing.includes(s.name)) throw new IacError(`build of ${s.name} failed`, "fix it");
      return { tag: `iac/${s.name}:new`, id: "sha256:x", built: true };
    },
    imageTag: async (s) => {
      calls.push(`tag ${s.name}`);
      if (failing.includes(s.name)) throw new IacError(`tag of ${s.name} failed`, "fix it");
      return { tag: `iac/${s.name}:new`, exists: false };
    },
    recentLogs: async () => ["last line"],
    certs: async () => {
      await writeFile(certFile, "cert");
      return { certFile, caFile: certFile };
    },
    envoyConfig: async (s) => {
      calls.push(`envoy ${s.name}`);
      return "";
    },
    controlPlaneCerts: async () => ({ caFile: certFile, certFile, keyFile: certFile }),
    terraform: {
      init: async () => void calls.push("terraform init"),
      plan: async (run) => {
        calls.push("terraform plan");
        return {
          changes: true,
          planFile: path.join(run.dir, "tfplan"),
          add: 1,
          change: 0,
          destroy: 0,
          containersRecreated: [],
        };
      },
      apply: async (run) => {
        calls.push("terraform apply");
        engine.applies++;
        const vars = (await readStackVars(run.dir))!;
        await writeFile(path.join(run.dir, "terraform.tfstate"), `{"serial": ${engine.applies}}`);
        engine.containers = Object.entries(vars.services).map(([name, svc]) => ({
          name: `${vars.project}-${name}`,
          id: `id-${name}-${engine.applies}`,
          imageId: `sha256:${svc.image}`,
          state: "running",
          labels: { "io.iac.project": vars.project, "io.iac.config-hash": svc.config_hash },
        }));
      },
    },
    imageId: async () => undefined,
    containers: async () => {
      calls.push("docker list");
      return engine.containers.map((c) => ({ ...c, labels: { ...c.labels } }));
    },
    waitForServing: async (t) => {
      calls.push(`health ${t.service}`);
      return {
        status: HealthStatus_Status.SERVING,
        phase: "running",
        exitCode: 0,
        restarts: 0,
        uptimeSeconds: 1,
        message: "",
      } as never;
    },
  };
  return { stages, calls };
}

describe("deploy orchestrator (fake stages)", () => {
  it("deploys what was prepared, applies once, health-checks each built service", async () => {
    const { stages, calls } = fakeStages();
    const events: DeployEvent[] = [];
    const r = await deploy(
      config,
      { project: "p", services: [spec("a"), spec("b")] },
      (e) => void events.push(e),
      undefined,
      stages,
    );
    expect(r.services.map((s) => [s.name, s.status, s.image])).toEqual([
      ["a", "SERVING", "iac/a:new"],
      ["b", "SERVING", "iac/b:new"],
    ]);
    expect(r.applied).toBe(true);
    expect(calls.filter((c) => c === "terraform apply")).toHaveLength(1);
    expect(calls).toEqual(expect.arrayContaining(["health a", "health b"]));
    const vars = await readStackVars(projectDir(config, "p"));
    expect(Object.keys(vars!.services).sort()).toEqual(["a", "b"]);
    expect(r.services[0]!.port).toBe(vars!.services.a!.host_port);
    expect(events.at(-1)).toMatchObject({ type: "result" });
  });

  it("a failed service keeps its previous version and stays FAILED (not health-checked)", async () => {
    await deploy(
      config,
      { project: "p", services: [spec("a"), spec("b")] },
      undefined,
      undefined,
      fakeStages().stages,
    );
    const before = await readStackVars(projectDir(config, "p"));
    const { stages, calls } = fakeStages(["b"]);
    const r = await deploy(
      config,
      { project: "p", services: [spec("a"), spec("b")] },
      undefined,
      undefined,
      stages,
    );
    const b = r.services.find((s) => s.name === "b")!;
    expect(b.status).toBe("FAILED");
    expect(b.error).toMatch(
      /build of b failed\nhint: fix it \(kept the previously deployed version\)$/,
    );
    expect(b.port).toBe(before!.services.b!.host_port);
    expect(calls).not.toContain("health b");
    const after = await readStackVars(projectDir(config, "p"));
    expect(after!.services.b).toEqual(before!.services.b);
  });

  it("a failed service with no previous version is left out of the stack", async () => {
    const { stages } = fakeStages(["b"]);
    const r = await deploy(
      config,
      { project: "p", services: [spec("a"), spec("b")] },
      undefined,
      undefined,
      stages,
    );
    expect(r.services.find((s) => s.name === "b")).toMatchObject({
      status: "FAILED",
      port: undefined,
    });
    expect(Object.keys((await readStackVars(projectDir(config, "p")))!.services)).toEqual(["a"]);
  });

  it("nothing prepared and nothing deployed before: no terraform run, no state left", async () => {
    const { stages, calls } = fakeStages(["a"]);
    const r = await deploy(
      config,
      { project: "p", services: [spec("a")] },
      undefined,
      undefined,
      stages,
    );
    expect(r.services[0]).toMatchObject({ status: "FAILED", commit: expect.any(String) });
    expect(calls.filter((c) => c.startsWith("terraform"))).toEqual([]);
    expect(await readStackVars(projectDir(config, "p"))).toBeUndefined();
  });

  it("plan never applies and never health-checks; prepared services are NOT_SERVING", async () => {
    const { stages, calls } = fakeStages(["b"]);
    const r = await planDeploy(
      config,
      { project: "p", services: [spec("a"), spec("b")] },
      undefined,
      undefined,
      stages,
    );
    expect(calls).toContain("terraform plan");
    // Plan without builds: tags only.
    expect(calls.filter((c) => c.startsWith("build"))).toEqual([]);
    expect(calls).toContain("tag a");
    expect(r.services[0]).toMatchObject({ build: "would build", action: { text: "+ new" } });
    expect(calls).not.toContain("terraform apply");
    expect(calls.some((c) => c.startsWith("health"))).toBe(false);
    expect(r.services.map((s) => s.status)).toEqual(["NOT_SERVING", "FAILED"]);
    expect(r.plan.changes).toBe(true);
  });

  it("plan refuses the swarm target instead of planning the single-host module", async () => {
    const { stages, calls } = fakeStages([]);
    const err = await planDeploy(
      { ...config, target: "swarm" },
      { project: "p", services: [spec("a")] },
      undefined,
      undefined,
      stages,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IacError);
    expect((err as IacError).message).toMatch(/does not support the swarm target/);
    expect(calls).toEqual([]);
  });
});

describe("no-op fast path (issue 14)", () => {
  const req = { project: "p", services: [spec("a"), spec("b")] };
  const run = (engine: FakeEngine) => {
    const f = fakeStages([], engine);
    return deploy(config, req, undefined, undefined, f.stages).then((r) => ({ r, calls: f.calls }));
  };
  const terraformCalls = (calls: string[]) => calls.filter((c) => c.startsWith("terraform"));

  it("a redeploy that changes nothing skips terraform (0 calls) and still health-checks", async () => {
    const engine = newEngine();
    const first = await run(engine);
    expect(terraformCalls(first.calls)).toEqual([
      "terraform init",
      "terraform plan",
      "terraform apply",
    ]);
    for (let i = 0; i < 3; i++) {
      const again = await run(engine);
      expect(terraformCalls(again.calls)).toEqual([]);
      expect(again.calls.filter((c) => c === "docker list")).toHaveLength(1);
      expect(again.calls).toEqual(expect.arrayContaining(["health a", "health b"]));
      expect(again.r).toMatchObject({ applied: false, terraformSkipped: true });
      expect(again.r.services.map((s) => s.status)).toEqual(["SERVING", "SERVING"]);
    }
    expect(engine.applies).toBe(1);
  });

  const drifts: [string, (e: FakeEngine) => void][] = [
    ["a container removed", (e) => e.containers.splice(0, 1)],
    ["a container stopped", (e) => void (e.containers[0]!.state = "exited")],
    ["a container replaced (new id)", (e) => void (e.containers[0]!.id = "id-by-hand")],
    ["a container on another image", (e) => void (e.containers[1]!.imageId = "sha256:other")],
    [
      "a config-hash label changed",
      (e) => void (e.containers[1]!.labels["io.iac.config-hash"] = "edited"),
    ],
    [
      "an extra container of the project",
      (e) => void e.containers.push({ ...e.containers[0]!, name: "p-stray", id: "id-stray" }),
    ],
  ];
  for (const [what, drift] of drifts) {
    it(`drift: ${what} -> the full plan/apply runs and repairs it`, async () => {
      const engine = newEngine();
      await run(engine);
      drift(engine);
      const repaired = await run(engine);
      expect(terraformCalls(repaired.calls)).toEqual([
        "terraform init",
        "terraform plan",
        "terraform apply",
      ]);
      expect(repaired.r.terraformSkipped).toBeUndefined();
      // Repaired: the next redeploy is a no-op again.
      const after = await run(engine);
      expect(terraformCalls(after.calls)).toEqual([]);
    });
  }

  it("a changed stack, a changed state file or a lost record runs terraform", async () => {
    const engine = newEngine();
    await run(engine);
    const dirP = projectDir(config, "p");
    await writeFile(path.join(dirP, "terraform.tfstate"), '{"serial": 99}');
    expect(terraformCalls((await run(engine)).calls)).toContain("terraform plan");
    await rm(path.join(dirP, "applied.json"));
    expect(terraformCalls((await run(engine)).calls)).toContain("terraform plan");
    const changed = fakeStages([], engine);
    await deploy(
      config,
      { project: "p", services: [spec("a")] },
      undefined,
      undefined,
      changed.stages,
    );
    expect(terraformCalls(changed.calls)).toContain("terraform apply");
  });
});
