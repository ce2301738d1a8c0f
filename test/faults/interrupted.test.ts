// Scenario 1 of issue 18: interrupted applies converge. SIGINT to iac only (as `kill`, CI runners
// and systemd send it) and SIGKILL of the terraform child, both mid-apply; then the next deploy
// must succeed with no orphan and a destroy whose terraform fails must still sweep everything.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FaultProject,
  SERVE,
  alive,
  childPids,
  commOf,
  parseReport,
  removeFaultImages,
} from "./harness.js";

const p = new FaultProject();
// -v: the test watches terraform's progress lines, which a quiet deploy does not print.
const DEPLOY = ["deploy", "--file", "repos.yaml", "-v"];

beforeAll(async () => {
  await p.setup({ a: SERVE, b: SERVE });
});
afterAll(async () => {
  await p.cleanup();
  await removeFaultImages(p.slugs);
});

async function until(pred: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function terraformChild(pid: number): number | undefined {
  return childPids(pid).find((c) => commOf(c) === "terraform");
}

async function expectConverged(res: { code: number | null; stdout: string; stderr: string }) {
  expect(res.code, res.stderr).toBe(0);
  const report = parseReport(res.stdout);
  expect(report.services.map((s) => s.status)).toEqual(["SERVING", "SERVING"]);
  expect(await p.containers()).toEqual({
    [`${p.project}-a`]: "running",
    [`${p.project}-b`]: "running",
  });
}

describe("fault: interrupted operations converge", () => {
  it("SIGINT to iac mid-apply: terraform is told and waited for; exit 130 naming what stopped", async () => {
    const run = p.spawn(DEPLOY);
    await run.waitFor(/terraform: docker_container\.app\[.*Creating\.\.\./);
    const tf = terraformChild(run.child.pid!);
    expect(tf, "terraform runs as a child of iac").toBeDefined();
    run.child.kill("SIGINT");
    const res = await run.done;
    expect(res.code, res.stderr).toBe(130);
    expect(res.stderr).toMatch(/interrupted \(SIGINT\) during terraform apply/);
    expect(alive(tf!), "iac waited for terraform to stop").toBe(false);
  });

  it("the next deploy converges", async () => {
    await expectConverged(await p.deploy());
  });

  it("SIGKILL of terraform mid-apply: said so; the next deploy reconciles the orphans", async () => {
    // New env for both services: terraform replaces both containers.
    await writeFile(
      path.join(p.work, "repos.yaml"),
      [
        "services:",
        ...["a", "b"].flatMap((n) => [
          `  - slug: file:fault-${n}`,
          `    name: ${n}`,
          `    env: {ROUND: "2"}`,
        ]),
        "",
      ].join("\n"),
    );
    const before = new Set(Object.keys(await p.containerIds()));
    const run = p.spawn(DEPLOY);
    // The apply first destroys the old containers: terraform apply is running by then.
    await run.waitFor(/terraform: docker_container\.app\[.*Destroying\.\.\./);
    const tf = terraformChild(run.child.pid!);
    expect(tf).toBeDefined();
    // Freeze terraform as it starts creating a container; its provider plugin carries on and
    // creates it in Docker. Killing terraform now loses that container from the state.
    await run.waitFor(/terraform: docker_container\.app\[.*Creating\.\.\./);
    process.kill(tf!, "SIGSTOP");
    // The provider usually creates the container while terraform is frozen, but not always: it
    // can block on its own log pipe to the frozen terraform (seen in about 1 run of 3). Both
    // cases must converge; the orphan case must also be named by the next deploy.
    let orphaned = true;
    try {
      await until(async () => Object.keys(await p.containerIds()).some((id) => !before.has(id)));
    } catch {
      orphaned = false;
      console.warn(
        "*** SIGKILL scenario: the provider created no container while terraform was frozen; " +
          "checking convergence without an orphan this run ***",
      );
    } finally {
      // Always: a frozen terraform would hold the project lock for the tests after this one.
      process.kill(tf!, "SIGKILL");
    }
    const res = await run.done;
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/terraform apply was killed by SIGKILL/);

    const next = await p.deploy();
    if (orphaned) expect(next.stderr).toMatch(/not in terraform state .*(removed|imported)/);
    await expectConverged(next);
  });

  it("destroy sweeps every labelled resource even when terraform fails", async () => {
    // A state the fast path leaves to terraform (a resource it does not know, as an older
    // module could have left), so terraform runs, and fails.
    const file = path.join(p.stateDir, "terraform.tfstate");
    const doc = JSON.parse(await readFile(file, "utf8")) as { resources: unknown[] };
    doc.resources.push({
      mode: "managed",
      type: "docker_volume",
      name: "legacy",
      provider: 'provider["registry.terraform.io/kreuzwerker/docker"]',
      instances: [{ schema_version: 0, attributes: { id: "legacy", name: "legacy" } }],
    });
    await writeFile(file, JSON.stringify(doc));
    const res = await p.iac(["destroy", "--yes"], { IAC_TERRAFORM_BIN: "/bin/false" });
    expect(res.stderr).toMatch(
      /terraform destroy: docker_volume\.legacy is not a container or a kept image/,
    );
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/terraform .*failed/);
    expect(res.stderr).toMatch(/swept/);
    expect(await p.containers()).toEqual({});
    expect(await p.networks()).toEqual([]);
  });
});
