// Runtime benchmark: image build times (cold / warm / reuse), container start -> SERVING,
// runner memory, image size over the base image. `npx tsx bench/build.ts`.
// Uses the base image `iac` would use (IAC_BASE_IMAGE, .env, the bootstrap record) and a throwaway wheel cache for
// the host download time; removes everything it creates.
import path from "node:path";
import type Docker from "dockerode";
import { loadConfig } from "../src/kernel/config.js";
import { waitForServing } from "../src/runtime/client.js";
import { dockerClient } from "../src/platform/docker.js";
import { buildImage } from "../src/image/build.js";
import { HealthStatus_Status } from "../src/gen/controlplane.js";
import { runnerWheelhouse } from "../src/image/wheelhouse.js";
import {
  BASE_IMAGE,
  makeCerts,
  makeFixture,
  runApp,
  TEST_LABEL,
  tmpRoot,
} from "../test/helpers/runtime-fixtures.js";

const docker = dockerClient({});
const root = await tmpRoot("iac-bench-build-");
const config = loadConfig({ ...process.env, IAC_BASE_IMAGE: BASE_IMAGE }, {}, root.dir);
const tags: string[] = [];
const containers: Docker.Container[] = [];
const results: Record<string, string> = {};
const ms = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(2)} s`;

async function execOut(c: Docker.Container, cmd: string[]): Promise<string> {
  const ex = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({});
  const chunks: Buffer[] = [];
  await new Promise((r) => {
    stream.on("data", (b: Buffer) => chunks.push(b));
    stream.on("end", r);
  });
  return Buffer.concat(chunks).toString("utf8");
}

try {
  let t0 = performance.now();
  await runnerWheelhouse({
    cacheDir: path.join(root.dir, "cache"),
    pipIndexUrl: config.pipIndexUrl,
  });
  results["host wheelhouse download (runner, empty cache)"] = ms(t0);

  const repos = path.join(root.dir, "repos");
  const a = await makeFixture(repos, "python-file");
  a.source.commit = `bench-${Date.now()}`;
  t0 = performance.now();
  const cold = await buildImage({
    config,
    service: "bench-cold",
    slug: a.slug,
    source: a.source,
    entrypoint: a.entrypoint,
    labels: TEST_LABEL,
    noCache: true,
  });
  tags.push(cold.tag);
  results["cold build (no layer cache; wheels cached)"] = ms(t0);

  const b = await makeFixture(repos, "python-module");
  b.source.commit = `bench-${Date.now()}`;
  t0 = performance.now();
  const warm = await buildImage({
    config,
    service: "bench-warm",
    slug: b.slug,
    source: b.source,
    entrypoint: b.entrypoint,
    labels: TEST_LABEL,
  });
  tags.push(warm.tag);
  results["warm build (another app, runner layers cached)"] = ms(t0);

  const cs = await makeFixture(repos, "console-script");
  cs.source.commit = `bench-${Date.now()}`;
  t0 = performance.now();
  const warmInstall = await buildImage({
    config,
    service: "bench-install",
    slug: cs.slug,
    source: cs.source,
    entrypoint: cs.entrypoint,
    labels: TEST_LABEL,
  });
  tags.push(warmInstall.tag);
  results["warm build with pip install of the project"] = ms(t0);

  t0 = performance.now();
  const reuse = await buildImage({
    config,
    service: "bench-warm",
    slug: b.slug,
    source: b.source,
    entrypoint: b.entrypoint,
    labels: TEST_LABEL,
  });
  results[`unchanged (tag exists, built=${reuse.built})`] = ms(t0);

  const certs = await makeCerts(path.join(root.dir, "secrets"), "bench");
  const startTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    t0 = performance.now();
    const { container, port } = await runApp(docker, warm.tag, {
      name: `bench-warm-${Date.now().toString(36)}-${i}`,
      service: "bench-warm",
      certDir: await certs.serviceDir("bench-warm"),
    });
    containers.push(container);
    const status = await waitForServing(
      { host: "127.0.0.1", port, serverName: "bench-warm" },
      certs.controlPlane,
      { deadlineMs: 60_000 },
    );
    if (status.status !== HealthStatus_Status.SERVING)
      throw new Error(`not serving: ${status.message}`);
    startTimes.push(performance.now() - t0);
    if (i < 2) await container.remove({ force: true });
  }
  startTimes.sort((x, y) => x - y);
  results["container create+start -> SERVING over mTLS (median of 3)"] =
    `${(startTimes[1]! / 1000).toFixed(2)} s`;

  const last = containers[containers.length - 1]!;
  await new Promise((r) => setTimeout(r, 1000));
  const status = await execOut(last, ["cat", "/proc/1/status"]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  results["runner RSS (PID 1, idle, OTel console export)"] = rss
    ? `${(Number(rss) / 1024).toFixed(1)} MiB`
    : "?";
  const stats = (await last.stats({ stream: false })) as { memory_stats?: { usage?: number } };
  if (stats.memory_stats?.usage) {
    results["container memory (runner + main())"] =
      `${(stats.memory_stats.usage / 1048576).toFixed(1)} MiB`;
  }

  const base = await docker.getImage(BASE_IMAGE).inspect();
  const img = await docker.getImage(warm.tag).inspect();
  results[`image size over ${BASE_IMAGE} (${(base.Size / 1e6).toFixed(0)} MB)`] =
    `+${((img.Size - base.Size) / 1e6).toFixed(1)} MB`;
} finally {
  for (const c of containers) await c.remove({ force: true }).catch(() => {});
  // The no-cache chain is pruned (Docker keeps parents other images still use); the warm
  // builds' parents stay as layer cache.
  for (const [i, t] of tags.entries()) {
    await docker
      .getImage(t)
      .remove({ force: true, noprune: i > 0 })
      .catch(() => {});
  }
  await root.cleanup();
}

const width = Math.max(...Object.keys(results).map((k) => k.length));
for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(width)}  ${v}`);
