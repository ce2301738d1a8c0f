// The swarm target for real: 3 Docker engines in their own network namespaces
// (test/swarm/harness.sh) joined into a Swarm; the CLI deploys 2 services x 2 replicas, a bad
// release is rolled back, a node dies, destroy leaves nothing. Heavy: `make test-swarm` only.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const HARNESS = path.join(ROOT, "test/swarm/harness.sh");
const NODES = ["n1", "n2", "n3"];
const sock = (n: string) => `unix:///run/iac-swarm/${n}.sock`;
const node = (n: string) => new Docker({ socketPath: `/run/iac-swarm/${n}.sock` });
const BASE = process.env.IAC_BASE_IMAGE ?? "iac-local/python:3.11-slim";
const ENVOY = process.env.IAC_ENVOY_IMAGE ?? "iac-local/envoy:v1.40.0";
/** harness.sh's registry: plain HTTP on the hub's private range, trusted by every node. */
const REGISTRY = `${process.env.IAC_SWARM_NET ?? "10.213.0"}.1:5000`;

const why =
  process.getuid?.() !== 0
    ? "needs root (ip netns, a dockerd per node)"
    : !existsSync("/usr/sbin/dockerd") && !existsSync("/usr/bin/dockerd")
      ? "dockerd is not installed"
      : undefined;
if (why) console.warn(`SKIPPED swarm integration test: ${why}`);

const project = `swt${Math.random().toString(36).slice(2, 8)}`;
let work = "";
let env: Record<string, string> = {};

async function harness(...args: string[]) {
  return run("bash", [HARNESS, ...args], { timeout: 300_000, maxBuffer: 1 << 24 });
}

async function iac(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run("node", [path.join(ROOT, "bin/iac.js"), ...args], {
      env,
      cwd: work,
      timeout: 480_000,
      maxBuffer: 1 << 26,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : -1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
    };
  }
}

interface Row {
  name: string;
  status: string;
  node?: string;
  replica?: number;
  message?: string;
}

async function health(): Promise<Row[]> {
  const r = await iac("health", "--output", "json");
  return (JSON.parse(r.stdout) as { services: Row[] }).services;
}

async function writeRepo(dir: string, body: string) {
  await mkdir(path.join(work, dir), { recursive: true });
  await writeFile(path.join(work, dir, "main.py"), `import os, time\n\ndef main():\n${body}\n`);
}

const GOOD = `    print("up", os.environ["IAC_SERVICE"], os.environ.get("VERSION", "v1"), flush=True)\n    while True:\n        time.sleep(3600)`;
const BAD = `    print("bad release: crashing", flush=True)\n    return 3`;

describe.skipIf(why !== undefined)("swarm target (3 engines in network namespaces)", () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "iac-swarm-"));
    await harness("down").catch(() => undefined);
    const t0 = Date.now();
    await harness("up", "3");
    await harness("load", BASE, ENVOY);
    console.log(`harness up + base/envoy images loaded in ${Date.now() - t0} ms`);
    await writeRepo("alpha", GOOD);
    await writeRepo("beta", GOOD);
    await writeFile(
      path.join(work, "repos.yaml"),
      "services:\n" +
        "  - slug: file:alpha\n    replicas: 2\n" +
        '  - slug: file:beta\n    replicas: 2\n    placement: ["node.labels.iac.node!=nowhere"]\n',
    );
    env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/root",
      DOCKER_HOST: sock("n1"),
      IAC_TARGET: "swarm",
      IAC_SWARM_NODES: NODES.map(sock).join(","),
      IAC_PROJECT: project,
      IAC_NETWORK: `${project}-mesh`,
      IAC_STATE_DIR: path.join(work, "state"),
      IAC_SECRETS_DIR: path.join(work, "secrets"),
      IAC_BASE_IMAGE: BASE,
      IAC_ENVOY_IMAGE: ENVOY,
      IAC_HEALTH_TIMEOUT_S: "120",
      ...(process.env.IAC_CACHE_DIR ? { IAC_CACHE_DIR: process.env.IAC_CACHE_DIR } : {}),
    };
  }, 600_000);

  afterAll(async () => {
    if (process.env.IAC_SWARM_KEEP !== "1") await harness("down").catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  it("deploys 2 services x 2 replicas spread over nodes, all SERVING through mTLS", async () => {
    const t0 = Date.now();
    const r = await iac("deploy", "--file", "repos.yaml", "--output", "json");
    console.log(`first deploy: ${Date.now() - t0} ms`);
    console.log(
      r.stderr
        .split("\n")
        .filter((l) => /^\[\d/.test(l))
        .join("\n"),
    );
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(r.stdout) as { services: { name: string; status: string }[] };
    expect(report.services.map((s) => [s.name, s.status]).sort()).toEqual([
      ["alpha", "SERVING"],
      ["beta", "SERVING"],
    ]);
    const rows = await health();
    expect(rows).toHaveLength(4);
    for (const svc of ["alpha", "beta"]) {
      const mine = rows.filter((x) => x.name === svc);
      expect(mine.map((x) => x.status)).toEqual(["SERVING", "SERVING"]);
      expect(mine.map((x) => x.replica).sort()).toEqual([1, 2]);
      // host-mode ports: two replicas of one service never share a node
      expect(new Set(mine.map((x) => x.node)).size).toBe(2);
    }
  });

  it("merges the logs of all replicas with a prefix", async () => {
    // --tail 0 = everything (Envoy's access log lines of the health checks come in between)
    const r = await iac("logs", "alpha", "--tail", "0");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => l.includes("up alpha v1"));
    const prefixes = new Set(lines.map((l) => l.split(" | ")[0]));
    expect(prefixes.size).toBe(2);
    for (const p of prefixes) expect(p).toMatch(/^alpha\.[12]@n[123]$/);
  });

  it("rolls a bad release back automatically: exit 1 with the reason, old version serving", async () => {
    await writeRepo("beta", BAD);
    const t0 = Date.now();
    const r = await iac("deploy", "--file", "repos.yaml", "--output", "json");
    console.log(`bad release -> rollback: ${Date.now() - t0} ms`);
    expect(r.code, r.stderr.slice(-3000)).toBe(1);
    const report = JSON.parse(r.stdout) as {
      services: { name: string; status: string; error?: string }[];
    };
    const beta = report.services.find((s) => s.name === "beta")!;
    expect(beta.status).toBe("FAILED");
    expect(beta.error).toMatch(/rolled back by Swarm/);
    expect(beta.error).toMatch(/previous version keeps serving/);
    expect(report.services.find((s) => s.name === "alpha")!.status).toBe("SERVING");
    const rows = await health();
    expect(rows.filter((x) => x.name === "beta").map((x) => x.status)).toEqual([
      "SERVING",
      "SERVING",
    ]);
    const logs = await iac("logs", "beta", "--tail", "200");
    expect(logs.stdout).toMatch(/up beta v1/);
    await writeRepo("beta", GOOD); // back to the good version for the next steps
  });

  it("reschedules the tasks of a killed node; health recovers", async () => {
    const rows = await health();
    const victim = rows.find((x) => x.name === "alpha" && x.node !== "n1")?.node;
    // Without a worker running an alpha task there is nothing to kill: the scenario would pass vacuously.
    expect(victim, JSON.stringify(rows)).toMatch(/^n[23]$/);
    if (!victim) return;
    const t0 = Date.now();
    await harness("kill", victim);
    let last: Row[] = [];
    try {
      while (Date.now() - t0 < 150_000) {
        last = await health();
        const ok =
          last.length === 4 && last.every((x) => x.status === "SERVING" && x.node !== victim);
        if (ok) break;
        await new Promise((res) => setTimeout(res, 2000));
      }
      console.log(
        `node ${victim} killed -> all tasks SERVING elsewhere after ${Date.now() - t0} ms`,
      );
    } finally {
      await harness("revive", victim); // back, so destroy can be checked on every node
    }
    expect(last.map((x) => [x.name, x.status, x.node === victim])).toEqual(
      last.map((x) => [x.name, "SERVING", false]),
    );
    expect(last).toHaveLength(4);
  });

  it("destroy leaves nothing of the project on any node", async () => {
    const r = await iac("destroy", "--yes");
    expect(r.code, r.stderr).toBe(0);
    const label = `io.iac.project=${project}`;
    const manager = node("n1");
    expect(await manager.listServices({ filters: { label: [label] } })).toEqual([]);
    expect(await manager.listSecrets({ filters: { label: [label] } })).toEqual([]);
    expect(await manager.listConfigs({ filters: { label: [label] } })).toEqual([]);
    for (const n of NODES) {
      const d = node(n);
      expect(await d.listContainers({ all: true, filters: { label: [label] } }), n).toEqual([]);
      expect(await d.listNetworks({ filters: { label: [label] } }), n).toEqual([]);
      if (n !== "n1") {
        const tasks = (await d.listImages()).flatMap((i) => i.RepoTags ?? []);
        expect(
          tasks.filter((t) => /^iac\/(alpha|beta)-task:/.test(t)),
          n,
        ).toEqual([]);
      }
    }
  });

  it("with IAC_REGISTRY the manager pushes the task images and the nodes pull them by digest", async () => {
    await harness("registry");
    const regProject = `${project}r`;
    const saved = env;
    env = {
      ...env,
      IAC_REGISTRY: REGISTRY,
      IAC_PROJECT: regProject,
      IAC_NETWORK: `${regProject}-mesh`,
    };
    try {
      await writeFile(
        path.join(work, "registry.yaml"),
        "services:\n  - slug: file:alpha\n    replicas: 2\n",
      );
      const t0 = Date.now();
      const r = await iac("deploy", "--file", "registry.yaml", "--output", "json");
      console.log(`deploy through the registry: ${Date.now() - t0} ms`);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const report = JSON.parse(r.stdout) as { services: { name: string; status: string }[] };
      expect(report.services.map((x) => [x.name, x.status])).toEqual([["alpha", "SERVING"]]);

      const svc = await node("n1").getService(`${regProject}-alpha`).inspect();
      const image = svc.Spec.TaskTemplate.ContainerSpec.Image as string;
      expect(image).toMatch(
        new RegExp(`^${REGISTRY.replace(/\./g, "\\.")}/iac/alpha-task@sha256:[0-9a-f]{64}$`),
      );
      // A worker running a replica got the image from the registry (nothing was loaded into it).
      const tasks = await node("n1").listTasks({
        filters: { service: [`${regProject}-alpha`], "desired-state": ["running"] },
      });
      const workerIds = new Set(
        (await node("n1").listNodes())
          .filter(
            (x: { Spec?: { Labels?: Record<string, string> } }) =>
              x.Spec?.Labels?.["iac.node"] !== "n1",
          )
          .map((x: { ID: string }) => x.ID),
      );
      const onWorker = tasks.find((t: { NodeID?: string }) => t.NodeID && workerIds.has(t.NodeID));
      expect(onWorker, "a replica on a worker").toBeDefined();
      const labels = (await node("n1").getNode(onWorker!.NodeID).inspect()).Spec.Labels as Record<
        string,
        string
      >;
      const worker = node(labels["iac.node"]!);
      const digests = (await worker.listImages()).flatMap((i) => i.RepoDigests ?? []);
      expect(digests).toContain(image);

      const d = await iac("destroy", "--yes");
      expect(d.code, d.stderr).toBe(0);
      expect(
        await node("n1").listServices({ filters: { label: [`io.iac.project=${regProject}`] } }),
      ).toEqual([]);
    } finally {
      env = saved;
    }
  });
});
