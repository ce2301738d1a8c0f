// Envoy benchmark (numbers, never assertions): container start -> SERVING with an Envoy sidecar
// vs without (IAC_SIDECAR=none), Envoy memory per sidecar, the Envoy image's size, and
// `make demo` cold (demo app images absent) and warm.
// Run: npx tsx bench/envoy.ts  (`make bench` runs it). BENCH_ROUNDS=N restarts per mode (5);
// BENCH_DEMO=0 skips the `make demo` timings. Removes everything it creates, except the demo
// app images (what a user's next `make demo` reuses).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import { loadReposFile } from "../src/intake/repofile.js";
import { loadSystemConfig } from "../src/kernel/config.js";
import { deploy } from "../src/operations/deploy.js";
import { destroy } from "../src/operations/destroy.js";
import { dockerClient } from "../src/platform/docker.js";
import { makeGitRepo } from "../test/helpers/git-fixtures.js";
import { untilServing } from "./serving.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const docker = dockerClient({});
const MB = 1024 * 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) =>
  `median ${median(xs).toFixed(2)} s (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}, n=${xs.length})`;

/** Memory of a running container as docker stats shows it, and its anonymous (RSS) part. */
async function memory(c: Docker.Container): Promise<{ usage: number; anon: number }> {
  const s = (await c.stats({ stream: false })) as unknown as {
    memory_stats: { usage: number; stats: Record<string, number> };
  };
  const st = s.memory_stats.stats ?? {};
  const cache = st.inactive_file ?? st.total_inactive_file ?? 0;
  return { usage: s.memory_stats.usage - cache, anon: st.anon ?? st.rss ?? st.total_rss ?? 0 };
}

async function startToServing(sidecar: "envoy" | "none", work: string, reposFile: string) {
  const project = `benv${sidecar[0]}${randomBytes(3).toString("hex")}`;
  const config = loadSystemConfig({
    IAC_SIDECAR: sidecar,
    IAC_PROJECT: project,
    IAC_NETWORK: `iacnet-${project}`,
    IAC_STATE_DIR: path.join(work, sidecar, ".iac"),
    IAC_SECRETS_DIR: path.join(work, sidecar, "secrets"),
  });
  try {
    const services = await loadReposFile(reposFile);
    const t0 = performance.now();
    const report = await deploy(config, { project, services });
    const deployS = (performance.now() - t0) / 1000;
    const svc = report.services[0]!;
    if (svc.status !== "SERVING") throw new Error(`${sidecar}: deploy failed: ${svc.error}`);
    const app = docker.getContainer(`${project}-${svc.name}`);
    const envoy = sidecar === "envoy" ? docker.getContainer(`${project}-${svc.name}-envoy`) : null;
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Stopped as terraform would leave them after a host reboot; started in its order.
      if (envoy) await envoy.stop({ t: 1 }).catch(() => undefined);
      await app.stop({ t: 1 });
      const t1 = performance.now();
      await app.start();
      if (envoy) await envoy.start();
      times.push(await untilServing(config, svc.port!, svc.name, t1, 50));
    }
    await new Promise((r) => setTimeout(r, 2_000)); // settle before reading memory
    const mem = {
      app: await memory(app),
      envoy: envoy ? await memory(envoy) : undefined,
      envoyImage: config.envoyImage,
    };
    return { deployS, times, mem, image: report.services[0]!.image };
  } finally {
    await destroy(config, project).catch(() => undefined);
  }
}

/** `make demo` (bootstrap + deploy + health + logs), wall time. */
async function makeDemo(): Promise<number> {
  const t0 = performance.now();
  await run("make", ["-s", "demo"], { cwd: ROOT, maxBuffer: 64 * MB, timeout: 900_000 });
  return (performance.now() - t0) / 1000;
}

async function demoImages(): Promise<Docker.ImageInfo[]> {
  const all = await docker.listImages({ all: true, filters: { label: ["io.iac.slug"] } });
  return all.filter((i) => /^file:(hello-main|greeter-cli)$/.test(i.Labels?.["io.iac.slug"] ?? ""));
}

const work = await mkdtemp(path.join(tmpdir(), "iac-bench-envoy-"));
const out: [string, string][] = [];
const builtImages = new Set<string>();
try {
  const nonce = randomBytes(4).toString("hex");
  const repo = await makeGitRepo({
    "main.py": `import time\n\ndef main():\n    print("bench ${nonce}", flush=True)\n    time.sleep(3600)\n`,
  });
  const reposFile = path.join(work, "repos.yaml");
  await writeFile(reposFile, `- name: hello\n  slug: file:${repo.dir}\n`);

  const none = await startToServing("none", work, reposFile);
  const envoy = await startToServing("envoy", work, reposFile);
  for (const r of [none, envoy]) if (r.image) builtImages.add(r.image);
  out.push(["container start -> SERVING, IAC_SIDECAR=none", fmt(none.times)]);
  out.push(["container start -> SERVING, Envoy sidecar", fmt(envoy.times)]);
  out.push([
    "  Envoy's cost at start (median difference)",
    `${(median(envoy.times) - median(none.times)).toFixed(2)} s`,
  ]);
  out.push(["first deploy of 1 service (image built once), none", `${none.deployS.toFixed(2)} s`]);
  out.push(["first deploy of 1 service (image reused), Envoy", `${envoy.deployS.toFixed(2)} s`]);
  const e = envoy.mem.envoy!;
  out.push([
    "Envoy sidecar memory (idle, after the health checks)",
    `${(e.usage / MB).toFixed(1)} MiB as docker stats shows it, ${(e.anon / MB).toFixed(1)} MiB anonymous (RSS)`,
  ]);
  out.push([
    "app container memory (runner + main()), for comparison",
    `${(envoy.mem.app.usage / MB).toFixed(1)} MiB (docker stats), ${(envoy.mem.app.anon / MB).toFixed(1)} MiB RSS`,
  ]);
  const img = await docker.getImage(envoy.mem.envoyImage).inspect();
  const labels = img.Config.Labels ?? {};
  const baseName = labels["org.opencontainers.image.base.name"];
  const base = baseName ? await docker.getImage(baseName).inspect() : undefined;
  out.push([
    `Envoy image ${envoy.mem.envoyImage}`,
    `${(img.Size / 1e6).toFixed(0)} MB` +
      (base
        ? ` (${baseName} ${(base.Size / 1e6).toFixed(0)} MB + Envoy ${((img.Size - base.Size) / 1e6).toFixed(0)} MB)`
        : ""),
  ]);

  if (process.env.BENCH_DEMO === "0") {
    out.push(["make demo", "skipped (BENCH_DEMO=0)"]);
  } else if (
    (await docker.listContainers({ filters: { label: ["io.iac.project=demo"] } })).length
  ) {
    out.push(["make demo", "SKIPPED: project 'demo' is deployed here; `make demo-destroy` first"]);
  } else {
    for (const i of await demoImages()) {
      await docker
        .getImage(i.Id)
        .remove({ force: true, noprune: true })
        .catch(() => undefined);
    }
    out.push(["make demo, cold (demo app images absent)", `${(await makeDemo()).toFixed(1)} s`]);
    out.push(["make demo, warm (deployed: no changes)", `${(await makeDemo()).toFixed(1)} s`]);
    await run("make", ["-s", "demo-destroy"], { cwd: ROOT, maxBuffer: 64 * MB });
    out.push(["make demo, warm images, fresh deploy", `${(await makeDemo()).toFixed(1)} s`]);
    await run("make", ["-s", "demo-destroy"], { cwd: ROOT, maxBuffer: 64 * MB });
  }
} finally {
  for (const tag of builtImages) {
    await docker
      .getImage(tag)
      .remove({ noprune: true })
      .catch(() => undefined);
  }
  await rm(work, { recursive: true, force: true });
}
const width = Math.max(...out.map(([k]) => k.length));
for (const [k, v] of out) console.log(`${k.padEnd(width)}  ${v}`);
