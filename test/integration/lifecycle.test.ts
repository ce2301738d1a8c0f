// Operator lifecycle through the CLI, on one machine: two projects share one network (created
// outside either state, removed with the last project), every applying deploy records a release,
// `iac status` sees both, `iac rollback` redeploys release 1's image without building, `iac prune`
// removes images of releases beyond IAC_KEEP_RELEASES, and a project whose state is lost is
// refused by deploy (naming adopt/destroy) and taken over by `iac adopt` with a no-change plan.
// Lean on time: IAC_SIDECAR=none, one tiny local repo (file: slug), two versions of it.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const id = randomBytes(3).toString("hex");
const projectA = `lca${id}`;
const projectB = `lcb${id}`;
const network = `iacnet-lc${id}`;
const service = `hello-${id}`;

interface Svc {
  name: string;
  status: string;
  image?: string;
  commit?: string;
}
interface Release {
  number: number;
  principal: string;
  kind: string;
  rollback_of?: number;
  services: { name: string; image: string; image_id?: string; commit: string }[];
}

describe("operator lifecycle (two projects, releases, rollback, prune, adopt)", () => {
  let work: string;
  let stateDir: string;
  let env: NodeJS.ProcessEnv;

  const iac = (...args: string[]) =>
    run("node", [path.join(ROOT, "bin/iac.js"), ...args], {
      cwd: work,
      env,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  const fails = async (...args: string[]) =>
    (await iac(...args).then(
      () => {
        throw new Error(`iac ${args.join(" ")} succeeded`);
      },
      (e: unknown) => e,
    )) as { code: number; stdout: string; stderr: string };
  const json = async <T>(...args: string[]): Promise<T> =>
    JSON.parse((await iac(...args, "--output", "json")).stdout) as T;
  const writeMain = (greeting: string) =>
    writeFile(
      path.join(work, service, "main.py"),
      `def main():\n    print(${JSON.stringify(greeting)}, flush=True)\n    return 0\n`,
    );
  const appImageId = async (project: string) => {
    const [app] = await docker.listContainers({
      filters: { label: [`io.iac.project=${project}`, "io.iac.role=app"] },
    });
    return app?.ImageID;
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "iac-lifecycle-"));
    stateDir = path.join(work, "state");
    await mkdir(path.join(work, service));
    await writeMain("v1");
    await writeFile(path.join(work, "repos.yaml"), `- file:${service}\n`);
    env = {
      ...process.env,
      IAC_NETWORK: network,
      IAC_SIDECAR: "none",
      IAC_STATE_DIR: stateDir,
      IAC_SECRETS_DIR: path.join(work, "secrets"),
      IAC_BASE_IMAGE: process.env.IAC_BASE_IMAGE ?? "iac-local/python:3.11-slim",
      IAC_HEALTH_TIMEOUT_S: "60",
      IAC_KEEP_RELEASES: "1",
    };
  });

  afterAll(async () => {
    for (const project of [projectA, projectB]) {
      const label = `io.iac.project=${project}`;
      for (const c of await docker.listContainers({ all: true, filters: { label: [label] } }))
        await docker.getContainer(c.Id).remove({ force: true });
    }
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
    const filters = { label: [`io.iac.slug=file:${service}`] };
    for (let pass = 0; pass < 10; pass++) {
      const images = await docker.listImages({ all: true, filters });
      if (images.length === 0) break;
      for (const img of images)
        await docker
          .getImage(img.Id)
          .remove({ force: true, noprune: true })
          .catch(() => undefined);
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("deploys two projects on one network; the network is in neither project's state", async () => {
    // No --file: ./repos.yaml is found and named.
    const a = await iac("deploy", "--project", projectA, "--output", "json");
    expect(a.stderr).toContain("reading repos.yaml (no --file given)");
    const docA = JSON.parse(a.stdout) as { services: Svc[]; release: number };
    expect(docA.services[0]).toMatchObject({ name: service, status: "SERVING" });
    expect(docA.release).toBe(1);
    const docB = await json<{ services: Svc[] }>("deploy", "--project", projectB);
    expect(docB.services[0]).toMatchObject({ name: service, status: "SERVING" });

    const net = await docker.getNetwork(network).inspect();
    expect(net.Labels).toMatchObject({ "io.iac.shared": "true" });
    expect(Object.keys(net.Containers ?? {})).toHaveLength(2);
  });

  it("a new version is release 2; iac history lists both with who deployed them", async () => {
    await writeMain("v2");
    const doc = await json<{ services: Svc[]; release: number }>("deploy", "-p", projectA);
    expect(doc.services[0]?.status).toBe("SERVING");
    expect(doc.release).toBe(2);
    const { releases } = await json<{ releases: Release[] }>("history", "-p", projectA);
    expect(releases.map((r) => r.number)).toEqual([1, 2]);
    expect(releases[0]!.principal).toMatch(/^cli:/);
    expect(releases[0]!.services[0]!.image).not.toBe(releases[1]!.services[0]!.image);
    expect(releases[1]!.services[0]!.image_id).toBe(await appImageId(projectA));
  });

  it("iac status shows both projects, their health and current release", async () => {
    const { projects } = await json<{
      projects: { project: string; state: string; release?: { number: number }; services: Svc[] }[];
    }>("status");
    const a = projects.find((p) => p.project === projectA);
    const b = projects.find((p) => p.project === projectB);
    expect(a).toMatchObject({ state: "deployed", release: { number: 2 } });
    expect(a!.services).toEqual([expect.objectContaining({ name: service, status: "SERVING" })]);
    expect(b).toMatchObject({ state: "deployed", release: { number: 1 } });
  });

  it("iac rollback redeploys release 1's image without building, health-gated", async () => {
    const before = await json<{ releases: Release[] }>("history", "-p", projectA);
    const doc = await json<{ services: Svc[]; rolled_back_to: number; release: number }>(
      "rollback",
      "-p",
      projectA,
    );
    expect(doc.rolled_back_to).toBe(1);
    expect(doc.release).toBe(3);
    expect(doc.services[0]).toMatchObject({ status: "SERVING" });
    expect(await appImageId(projectA)).toBe(before.releases[0]!.services[0]!.image_id);
    const { releases } = await json<{ releases: Release[] }>("history", "-p", projectA);
    expect(releases.at(-1)).toMatchObject({ number: 3, kind: "rollback", rollback_of: 1 });
  });

  it("iac prune removes the image only older releases use (IAC_KEEP_RELEASES=1)", async () => {
    const { releases } = await json<{ releases: Release[] }>("history", "-p", projectA);
    const v2 = releases[1]!.services[0]!.image;
    const result = await json<{ removed: string[] }>("prune", "-p", projectA);
    expect(result.removed).toEqual([v2]);
    await expect(docker.getImage(v2).inspect()).rejects.toThrow();
    // release 1's image (running now) and project B's are untouched
    await expect(docker.getImage(releases[0]!.services[0]!.image).inspect()).resolves.toBeTruthy();
  });

  it("lost state: deploy stops naming adopt and destroy; iac adopt imports with a no-change plan", async () => {
    const running = await appImageId(projectA);
    await rm(path.join(stateDir, projectA), { recursive: true, force: true });
    const err = await fails("deploy", "-p", projectA);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/iac adopt --project/);
    expect(err.stderr).toMatch(/iac destroy --project/);
    expect(await appImageId(projectA)).toBe(running); // nothing was touched

    const adopted = await json<{
      services: string[];
      planChanges: boolean;
      imported: string[];
      recreated: string[];
    }>("adopt", "-p", projectA);
    expect(adopted.services).toEqual([service]);
    expect(adopted.imported).toContain(`docker_container.app["${service}"]`);
    expect(adopted.planChanges).toBe(false);
    // Same image (not rebuilt, not replaced by another version), now under Terraform.
    expect(await appImageId(projectA)).toBe(running);
    const health = await json<{ services: Svc[] }>("health", "-p", projectA);
    expect(health.services[0]?.status).toBe("SERVING");
  });

  it("the network stays while a project uses it and goes with the last one", async () => {
    await iac("destroy", "-p", projectB, "--yes");
    await expect(docker.getNetwork(network).inspect()).resolves.toBeTruthy();
    await iac("destroy", "-p", projectA, "--yes");
    await expect(docker.getNetwork(network).inspect()).rejects.toThrow();
  });
});
