// The no-op fast path (issue 14) with real Docker and terraform: a redeploy that changes
// nothing skips terraform; each kind of drift the engine can show (a container removed,
// stopped, replaced by hand) makes the redeploy run the full plan/apply, which repairs it.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeployEvent } from "../../src/kernel/events.js";
import { type Config, loadSystemConfig } from "../../src/kernel/config.js";
import { loadReposFile } from "../../src/intake/repofile.js";
import { type DeployReport, deploy, planDeploy } from "../../src/operations/deploy.js";
import { destroy } from "../../src/operations/destroy.js";
import type { ServiceSpec } from "../../src/kernel/types.js";
import { makeGitRepo, type FixtureRepo } from "../helpers/git-fixtures.js";
import { docker } from "../helpers/e2e-project.js";

const project = `noop${randomBytes(3).toString("hex")}`;
const container = `${project}-svc`;
let work: string;
let config: Config;
let services: ServiceSpec[];
let repo: FixtureRepo;
let image: string | undefined;

async function redeploy(): Promise<{ report: DeployReport; terraform: boolean }> {
  let terraform = false;
  const report = await deploy(config, { project, services }, (e: DeployEvent) => {
    if (e.type === "log" && e.source === "terraform") terraform = true;
    if (e.type === "stage" && e.stage === "plan" && /terraform plan \(/.test(e.message ?? ""))
      terraform = true;
  });
  return { report, terraform };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "iac-noop-"));
  config = loadSystemConfig({
    IAC_PROJECT: project,
    IAC_SIDECAR: "none",
    IAC_NETWORK: `iacnet-${project}`,
    IAC_STATE_DIR: path.join(work, "state"),
    IAC_SECRETS_DIR: path.join(work, "secrets"),
  });
  repo = await makeGitRepo({
    "main.py": `import time\n\ndef main():\n    print("noop ${project}", flush=True)\n    time.sleep(3600)\n`,
  });
  const file = path.join(work, "repos.yaml");
  await writeFile(file, `- name: svc\n  slug: file:${repo.dir}\n`);
  services = await loadReposFile(file);
  const first = await redeploy();
  expect(first.report.services[0]).toMatchObject({ status: "SERVING" });
  expect(first.terraform).toBe(true);
  image = first.report.services[0]!.image;
});

afterAll(async () => {
  await destroy(config, project).catch(() => undefined);
  if (image)
    await docker
      .getImage(image)
      .remove({ noprune: true })
      .catch(() => undefined);
  await repo?.cleanup();
  await rm(work, { recursive: true, force: true });
});

describe("no-op fast path (real Docker + terraform)", () => {
  it("a redeploy that changes nothing skips terraform and is still health-checked", async () => {
    const before = await docker.getContainer(container).inspect();
    const { report, terraform } = await redeploy();
    expect(terraform).toBe(false);
    expect(report).toMatchObject({ applied: false, terraformSkipped: true });
    expect(report.services[0]).toMatchObject({ status: "SERVING" });
    expect((await docker.getContainer(container).inspect()).Id).toBe(before.Id);
  });

  it("iac plan of an unchanged stack answers without terraform; a changed one runs terraform plan", async () => {
    const terraformRan = async (svcs: ServiceSpec[]) => {
      let ran = false;
      const report = await planDeploy(config, { project, services: svcs }, (e: DeployEvent) => {
        if (e.type === "stage" && e.stage === "plan" && /terraform plan \(/.test(e.message ?? ""))
          ran = true;
      });
      return { report, ran };
    };
    const same = await terraformRan(services);
    expect(same.ran).toBe(false);
    expect(same.report).toMatchObject({ terraformSkipped: true, plan: { changes: false } });
    const changed = await terraformRan(services.map((s) => ({ ...s, env: { ...s.env, X: "1" } })));
    expect(changed.ran).toBe(true);
    expect(changed.report.terraformSkipped).toBeUndefined();
    expect(changed.report.plan).toMatchObject({ changes: true, change: 0 });
    expect(changed.report.plan.containersRecreated).toEqual(['docker_container.app["svc"]']);
  });

  const drifts: [string, () => Promise<void>][] = [
    ["removed", () => docker.getContainer(container).remove({ force: true })],
    ["stopped", () => docker.getContainer(container).stop({ t: 1 })],
    [
      "replaced by hand (same name and labels, another container)",
      async () => {
        const old = await docker.getContainer(container).inspect();
        await docker.getContainer(container).remove({ force: true });
        const impostor = await docker.createContainer({
          name: container,
          Image: old.Image,
          Labels: old.Config.Labels,
          Entrypoint: ["sleep", "3600"],
          User: "10001:10001",
          HostConfig: { ReadonlyRootfs: true, CapDrop: ["ALL"] },
        });
        await impostor.start();
      },
    ],
  ];
  for (const [what, drift] of drifts) {
    it(`a container ${what}: the full plan/apply runs and repairs it`, async () => {
      await drift();
      const repaired = await redeploy();
      expect(repaired.terraform).toBe(true);
      expect(repaired.report.terraformSkipped).toBeUndefined();
      expect(repaired.report.services[0]).toMatchObject({ status: "SERVING" });
      const c = await docker.getContainer(container).inspect();
      expect(c.State.Running).toBe(true);
      expect(c.Config.Entrypoint).not.toEqual(["sleep", "3600"]);
      // Repaired and recorded: the next redeploy is a no-op again.
      const again = await redeploy();
      expect(again.terraform).toBe(false);
      expect(again.report.terraformSkipped).toBe(true);
    });
  }
});

describe("destroy fast path (real Docker + terraform)", () => {
  it("removes the containers without terraform, empties the state, and terraform deploys on it again", async () => {
    const dir = path.join(config.stateDir, project);
    const before = JSON.parse(await readFile(path.join(dir, "terraform.tfstate"), "utf8")) as {
      serial: number;
      lineage: string;
      resources: unknown[];
    };
    expect(before.resources.length).toBeGreaterThan(0);
    // Terraform cannot run: the fast path must not need it.
    const noTerraform = { ...config, terraform: { ...config.terraform, bin: "/bin/false" } };
    const events: DeployEvent[] = [];
    const { removed } = await destroy(noTerraform, project, (e) => events.push(e));
    expect(removed).toContain(container);
    expect(events.some((e) => e.type === "log" && e.source === "terraform")).toBe(false);
    const gone = await docker.listContainers({
      all: true,
      filters: { label: [`io.iac.project=${project}`] },
    });
    expect(gone).toEqual([]);
    const after = JSON.parse(await readFile(path.join(dir, "terraform.tfstate"), "utf8")) as {
      serial: number;
      lineage: string;
      resources: unknown[];
    };
    expect(after).toMatchObject({
      serial: before.serial + 1,
      lineage: before.lineage,
      resources: [],
    });
    // Terraform reads the emptied state as its own: the next deploy creates the stack anew.
    const next = await redeploy();
    expect(next.terraform).toBe(true);
    expect(next.report.services[0]).toMatchObject({ status: "SERVING" });
  });
});
