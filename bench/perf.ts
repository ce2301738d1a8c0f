// `make bench`: every figure of issue 14 beside its anchor, in one run; a table on stdout and
// the same as JSON in bench/results/perf-<time>.json. Numbers, never assertions: a figure that
// misses its target is marked, not failed. Removes everything it creates.
//
// Anchors: bare `node -e ''`; a raw `terraform plan` + `apply` no-op on the same state; a raw
// `terraform plan`; `docker run --rm IMAGE true`; the same builds one after another; `docker
// rm -f` of the same containers + `docker network rm`; `docker-compose up -d` no-op (Debian's
// docker-compose, what a user would pick instead; skipped with a note when absent).
// BENCH_ROUNDS (3) repeats the key figures (median); BENCH_SECTIONS=cli,deploy,envoy,builds,api
// picks sections; BENCH_SECONDS (5) per API scenario.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadReposFile } from "../src/intake/repofile.js";
import { type Config, loadSystemConfig } from "../src/kernel/config.js";
import { deploy, planDeploy } from "../src/operations/deploy.js";
import { destroy } from "../src/operations/destroy.js";
import { dockerClient } from "../src/platform/docker.js";
import { projectDir } from "../src/stack/tfvars.js";
import { makeGitRepo } from "../test/helpers/git-fixtures.js";
import { apiScenarios } from "./api.js";
import { untilServing } from "./serving.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECTIONS = new Set(
  (process.env.BENCH_SECTIONS ?? "cli,deploy,envoy,builds,api").split(",").map((s) => s.trim()),
);
const docker = dockerClient({});

type Target =
  | { kind: "ratio<="; x: number }
  | { kind: "delta<="; x: number }
  | { kind: "<="; x: number }
  | { kind: ">="; x: number };
interface Figure {
  figure: string;
  value: number;
  unit: string;
  anchor?: string;
  anchorValue?: number;
  target?: Target;
  note?: string;
}
const figures: Figure[] = [];
const notes: string[] = [];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}
async function medianOf(n: number, fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await seconds(fn));
  return median(xs);
}
function add(f: Figure): void {
  figures.push(f);
  process.stderr.write(`[bench] ${f.figure}: ${f.value.toFixed(3)} ${f.unit}\n`);
}
async function section(name: string, fn: () => Promise<void>): Promise<void> {
  if (!SECTIONS.has(name)) return;
  process.stderr.write(`[bench] == ${name} (load ${loadavg()[0]!.toFixed(1)})\n`);
  try {
    await fn();
  } catch (err) {
    notes.push(`${name}: FAILED: ${(err as Error).message.split("\n")[0]}`);
    process.stderr.write(`[bench] ${name} failed: ${(err as Error).stack}\n`);
  }
}

function projectConfig(project: string, work: string, sidecar: "none" | "envoy"): Config {
  return loadSystemConfig({
    IAC_PROJECT: project,
    IAC_SIDECAR: sidecar,
    IAC_NETWORK: `iacnet-${project}`,
    IAC_STATE_DIR: path.join(work, project, "state"),
    IAC_SECRETS_DIR: path.join(work, "secrets"),
  });
}

/** Median seconds from starting the service's containers (app, then its Envoy) to SERVING. */
async function startToServing(
  config: Config,
  project: string,
  svc: { name: string; port?: number },
  envoy: boolean,
): Promise<number> {
  const app = docker.getContainer(`${project}-${svc.name}`);
  const sidecar = envoy ? docker.getContainer(`${project}-${svc.name}-envoy`) : undefined;
  const starts: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    await sidecar?.stop({ t: 1 }).catch(() => undefined);
    await app.stop({ t: 1 });
    const t0 = performance.now();
    await app.start();
    await sidecar?.start();
    starts.push(await untilServing(config, svc.port!, svc.name, t0, 20));
  }
  return median(starts);
}

/**
 * Fixture repos with fresh content (images really build). `deps`: requirements.txt lines per
 * repo; a marker that is always true but names this run keeps Docker's layer cache (and the
 * wheel cache) from serving an earlier run's install of the same pins.
 */
async function repos(work: string, names: string[], deps?: string[][]) {
  const nonce = randomBytes(4).toString("hex");
  const lines: string[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  for (const [i, name] of names.entries()) {
    const reqs = deps?.[i]?.map((r) => `${r} ; platform_machine != "bench-${nonce}"\n`);
    const r = await makeGitRepo({
      "main.py": `import time\n\ndef main():\n    print("${name} ${nonce}", flush=True)\n    time.sleep(3600)\n`,
      ...(reqs && { "requirements.txt": reqs.join("") }),
    });
    cleanups.push(r.cleanup);
    lines.push(`- name: ${name}\n  slug: file:${r.dir}`);
  }
  const file = path.join(work, `repos-${nonce}.yaml`);
  await writeFile(file, lines.join("\n") + "\n");
  return {
    services: await loadReposFile(file),
    cleanup: () => Promise.all(cleanups.map((c) => c())),
  };
}

const images = new Set<string>();
async function removeImages(): Promise<void> {
  for (const tag of images)
    await docker
      .getImage(tag)
      .remove({ noprune: true })
      .catch(() => undefined);
}

const work = await mkdtemp(path.join(tmpdir(), "iac-bench-perf-"));
const machine = {
  cores: cpus().length,
  loadBefore: loadavg().map((x) => +x.toFixed(2)),
  node: process.version,
  docker: (await docker.version()).Version,
};
try {
  await section("cli", async () => {
    const bare = await medianOf(7, () => run(process.execPath, ["-e", ""]));
    const bin = path.join(ROOT, "bin/iac.js");
    await run(process.execPath, [bin, "--version"]); // a stale dist/ is rebuilt here, not timed
    for (const arg of ["--version", "--help"]) {
      add({
        figure: `iac ${arg}`,
        value: await medianOf(7, () => run(process.execPath, [bin, arg])),
        unit: "s",
        anchor: "node -e ''",
        anchorValue: bare,
        target: { kind: "ratio<=", x: 3 },
      });
    }
  });

  await section("deploy", async () => {
    const project = `bperf${randomBytes(3).toString("hex")}`;
    const config = projectConfig(project, work, "none");
    const { services, cleanup } = await repos(work, ["alpha", "beta"]);
    const req = { project, services };
    const compose = `bcomp${randomBytes(3).toString("hex")}`;
    try {
      const coldS = await seconds(() => deploy(config, req));
      const first = await deploy(config, req); // the record is complete after a full deploy
      for (const s of first.services) if (s.image) images.add(s.image);
      const dir = projectDir(config, project);
      const tfEnv = {
        ...process.env,
        TF_IN_AUTOMATION: "1",
        ...(config.terraform.cliConfig ? { TF_CLI_CONFIG_FILE: config.terraform.cliConfig } : {}),
      };
      const tf = (args: string[]) => run(config.terraform.bin, args, { cwd: dir, env: tfEnv });
      const rawNoop = await medianOf(ROUNDS, async () => {
        await tf(["plan", "-input=false", "-no-color", "-out=raw.tfplan"]);
        await tf(["apply", "-input=false", "-no-color", "raw.tfplan"]);
      });
      // Two applies above left the state file rewritten: one full deploy records it again.
      await deploy(config, req);
      let skipped = 0;
      const noop = await medianOf(ROUNDS, async () => {
        const r = await deploy(config, req);
        if (r.terraformSkipped) skipped++;
      });
      add({
        figure: `no-op redeploy, 2 services (terraform skipped ${skipped}/${ROUNDS})`,
        value: noop,
        unit: "s",
        anchor: "raw terraform plan + apply no-op",
        anchorValue: rawNoop,
        target: { kind: "ratio<=", x: 0.25 },
      });
      add({
        figure: "cold deploy, 2 services (fetch, build, apply, health)",
        value: coldS,
        unit: "s",
        anchor: "raw terraform plan + apply no-op",
        anchorValue: rawNoop,
      });
      const rawPlan = await medianOf(ROUNDS, () =>
        tf(["plan", "-input=false", "-no-color", "-lock=false"]),
      );
      let planSkipped = 0;
      add({
        figure: `iac plan, warm, nothing changed (images exist, no builds; terraform skipped ${ROUNDS}/${ROUNDS})`,
        value: await medianOf(ROUNDS, async () => {
          if ((await planDeploy(config, req)).terraformSkipped) planSkipped++;
        }),
        unit: "s",
        anchor: "raw terraform plan",
        anchorValue: rawPlan,
        target: { kind: "ratio<=", x: 1.2 },
      });
      if (planSkipped !== ROUNDS)
        notes.push(`iac plan skipped terraform ${planSkipped}/${ROUNDS} times`);
      // A changed stack (one env var per service: every app container would be replaced) runs
      // terraform plan (+ show -json for the per-service actions); the anchor plans the same vars.
      const changedReq = {
        ...req,
        services: services.map((x) => ({ ...x, env: { ...x.env, BENCH_CHANGED: "1" } })),
      };
      const applied = JSON.parse(
        await readFile(path.join(dir, "terraform.tfvars.json"), "utf8"),
      ) as {
        services: Record<string, { env: Record<string, string> }>;
      };
      for (const v of Object.values(applied.services)) v.env = { ...v.env, BENCH_CHANGED: "1" };
      const changedVars = path.join(dir, "bench-changed.tfvars.json");
      await writeFile(changedVars, JSON.stringify(applied));
      const rawChanged = await medianOf(ROUNDS, () =>
        tf(["plan", "-input=false", "-no-color", "-lock=false", `-var-file=${changedVars}`]),
      );
      await rm(changedVars);
      add({
        figure: "iac plan, warm, every container to replace (terraform plan -json)",
        value: await medianOf(ROUNDS, () => planDeploy(config, changedReq)),
        unit: "s",
        anchor: "raw terraform plan of the same vars",
        anchorValue: rawChanged,
        target: { kind: "ratio<=", x: 1.2 },
      });

      // What a user would run instead: docker-compose with the same images, no-op `up -d`.
      const composeFile = path.join(work, "docker-compose.yml");
      await writeFile(
        composeFile,
        "version: '2.4'\nservices:\n" +
          first.services
            .map(
              (s) =>
                `  ${s.name}:\n    image: ${s.image}\n    environment: [IAC_SIDECAR=envoy]\n    read_only: true\n    tmpfs: [/tmp]\n`,
            )
            .join(""),
      );
      const dc = (args: string[]) =>
        run("docker-compose", ["-p", compose, "-f", composeFile, ...args], { cwd: work });
      let composeUp: number | undefined;
      try {
        await dc(["up", "-d"]);
        composeUp = await medianOf(ROUNDS, () => dc(["up", "-d"]));
      } catch (err) {
        notes.push(`docker-compose anchor skipped: ${(err as Error).message.split("\n")[0]}`);
      }
      if (composeUp !== undefined) {
        add({
          figure: "no-op redeploy, 2 services (vs docker-compose)",
          value: noop,
          unit: "s",
          anchor: "docker-compose up -d no-op",
          anchorValue: composeUp,
        });
      }

      // Start -> SERVING (runner with mTLS, no sidecar) vs a bare `docker run --rm IMAGE true`.
      const svc = first.services[1]!;
      const image = svc.image!;
      const dockerRun = await medianOf(ROUNDS, () =>
        run("docker", ["run", "--rm", "--entrypoint", "true", image]),
      );
      add({
        figure: `container start -> SERVING over mTLS, IAC_SIDECAR=none, default stability window (IAC_HEALTH_STABLE_S=${config.healthStableS})`,
        value: await startToServing(config, project, svc, false),
        unit: "s",
        anchor: "docker run --rm IMAGE true",
        anchorValue: dockerRun,
      });
      // The mechanism without the deliberate window (issue 18: SERVING only after main() has
      // run IAC_HEALTH_STABLE_S without a restart): the same stack redeployed with it at 0.
      const noWindow = { ...config, healthStableS: 0 };
      await deploy(noWindow, req);
      add({
        figure: "container start -> SERVING over mTLS, IAC_SIDECAR=none, IAC_HEALTH_STABLE_S=0",
        value: await startToServing(noWindow, project, svc, false),
        unit: "s",
        anchor: "docker run --rm IMAGE true",
        anchorValue: dockerRun,
        target: { kind: "delta<=", x: 0.25 },
      });
      await new Promise((r) => setTimeout(r, 2_000));
      const ex = await docker
        .getContainer(`${project}-${svc.name}`)
        .exec({ Cmd: ["cat", "/proc/1/status"], AttachStdout: true });
      const out = await new Promise<string>((resolve) => {
        void ex.start({}).then((stream) => {
          const chunks: Buffer[] = [];
          stream.on("data", (b: Buffer) => chunks.push(b));
          stream.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
        });
      });
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(out)?.[1] ?? NaN) / 1024;
      add({
        figure: "runner RSS, idle (PID 1, main() running, console telemetry)",
        value: rss,
        unit: "MiB",
        target: { kind: "<=", x: 35 },
      });
      const baseSize = (await docker.getImage(config.baseImage).inspect()).Size / 1e6;
      add({
        figure: `app image size over the base ${config.baseImage}`,
        value: (await docker.getImage(image).inspect()).Size / 1e6 - baseSize,
        unit: "MB",
        anchor: "base image size",
        anchorValue: baseSize,
        target: { kind: "<=", x: 60 },
      });

      // Destroy vs removing the same kind of containers by hand (the compose project's).
      let rmAnchor: number | undefined;
      if (composeUp !== undefined) {
        const ids = (
          await docker.listContainers({
            all: true,
            filters: { label: [`com.docker.compose.project=${compose}`] },
          })
        ).map((c) => c.Id);
        rmAnchor = await seconds(async () => {
          await run("docker", ["rm", "-f", ...ids]);
          await run("docker", ["network", "rm", `${compose}_default`]);
        });
      }
      let destroyPath = "terraform destroy";
      const destroyS = await seconds(() =>
        destroy(config, project, (e) => {
          if (e.type === "stage" && /terraform not needed/.test(e.message ?? ""))
            destroyPath = "terraform not needed";
          if (e.type === "log" && /^terraform destroy: /.test(e.line)) notes.push(e.line);
        }),
      );
      add({
        figure: `destroy, 2 services + network (${destroyPath})`,
        value: destroyS,
        unit: "s",
        ...(rmAnchor !== undefined && {
          anchor: "docker rm -f + docker network rm",
          anchorValue: rmAnchor,
        }),
        target: { kind: "ratio<=", x: 2 },
      });
    } finally {
      await run(
        "docker-compose",
        ["-p", compose, "-f", path.join(work, "docker-compose.yml"), "down"],
        {
          cwd: work,
        },
      ).catch(() => undefined);
      await destroy(config, project).catch(() => undefined);
      await cleanup();
    }
  });

  await section("envoy", async () => {
    const project = `bpenv${randomBytes(3).toString("hex")}`;
    const config = projectConfig(project, work, "envoy");
    const { services, cleanup } = await repos(work, ["gamma"]);
    try {
      const r = await deploy(config, { project, services });
      const svc = r.services[0]!;
      if (svc.image) images.add(svc.image);
      if (svc.status !== "SERVING") throw new Error(`deploy failed: ${svc.error}`);
      const dockerRun = await medianOf(ROUNDS, () =>
        run("docker", ["run", "--rm", "--entrypoint", "true", svc.image!]),
      );
      add({
        figure: `container start -> SERVING over mTLS, Envoy sidecar, default stability window (IAC_HEALTH_STABLE_S=${config.healthStableS})`,
        value: await startToServing(config, project, svc, true),
        unit: "s",
        anchor: "docker run --rm IMAGE true",
        anchorValue: dockerRun,
      });
      const noWindow = { ...config, healthStableS: 0 };
      await deploy(noWindow, { project, services });
      add({
        figure: "container start -> SERVING over mTLS, Envoy sidecar, IAC_HEALTH_STABLE_S=0",
        value: await startToServing(noWindow, project, svc, true),
        unit: "s",
        anchor: "docker run --rm IMAGE true",
        anchorValue: dockerRun,
        target: { kind: "delta<=", x: 0.25 },
      });
    } finally {
      await destroy(config, project).catch(() => undefined);
      await cleanup();
    }
  });

  await section("builds", async () => {
    // Honest-cold on both sides: 4 fresh repos with two small real PyPI dependencies each (pins
    // of their own per repo), each side with an empty IAC_CACHE_DIR of its own (sources and
    // wheels, the runner's too, are downloaded again). The anchor: the 4 builds one after
    // another (fetch, detect, wheel downloads, build); then a cold deploy of 4 other repos
    // (the same, in parallel, plus terraform apply and the health checks' stable window).
    const { realStages } = await import("../src/operations/stages.js");
    const project = `bpbld${randomBytes(3).toString("hex")}`;
    const base = projectConfig(project, work, "none");
    const seqConfig = { ...base, cacheDir: path.join(work, "cache-sequential") };
    const config = { ...base, cacheDir: path.join(work, "cache-deploy") };
    const pins = (six: string, attrs: string) => [`six==${six}`, `attrs==${attrs}`];
    const seq = await repos(
      work,
      ["s1", "s2", "s3", "s4"],
      [
        pins("1.16.0", "23.1.0"),
        pins("1.15.0", "22.2.0"),
        pins("1.14.0", "22.1.0"),
        pins("1.13.0", "21.4.0"),
      ],
    );
    const par = await repos(
      work,
      ["p1", "p2", "p3", "p4"],
      [
        pins("1.17.0", "23.2.0"),
        pins("1.12.0", "21.2.0"),
        pins("1.11.0", "21.3.0"),
        pins("1.10.0", "21.1.0"),
      ],
    );
    try {
      let steps = 0;
      let ran = 0;
      const sequential = await seconds(async () => {
        for (const spec of seq.services) {
          const ctx = {
            config: seqConfig,
            project,
            onEvent: (e: { type: string; line?: string }) => {
              if (e.type !== "log" || !e.line) return;
              if (/^Step \d+\/\d+ : /.test(e.line)) steps++;
              if (/^ ---> Running in /.test(e.line)) ran++;
            },
          };
          const source = await realStages.fetch(spec, ctx);
          const entrypoint = await realStages.detect(source, spec);
          const b = await realStages.build(spec, source, entrypoint, ctx);
          images.add(b.tag);
        }
      });
      let r: Awaited<ReturnType<typeof deploy>> | undefined;
      const cold = await seconds(async () => {
        r = await deploy(config, { project, services: par.services });
      });
      for (const s of r?.services ?? []) if (s.image) images.add(s.image);
      add({
        figure:
          "cold deploy of 4 repos, 2 PyPI deps each (parallel fetch/wheels/build, apply, health)",
        value: cold,
        unit: "s",
        anchor: "the same 4 builds one after another (empty wheel cache)",
        anchorValue: sequential,
        target: { kind: "ratio<=", x: 0.7 },
      });
      add({
        // Every step that is not a cache hit and not a COPY runs a container (create + commit).
        figure: "containers run per build, 4 sequential cold builds",
        value: ran / 4,
        unit: "containers",
        note: `${steps / 4} Dockerfile steps per build, cache hits included`,
      });
    } finally {
      await destroy(config, project).catch(() => undefined);
      await seq.cleanup();
      await par.cleanup();
    }
  });

  await section("api", async () => {
    const rows = await apiScenarios({ cacheMiss: false });
    for (const row of rows) {
      const target: Target | undefined = /health/.test(row.scenario)
        ? { kind: ">=", x: 15_000 }
        : /cache hit/.test(row.scenario)
          ? { kind: ">=", x: 12_000 }
          : undefined;
      add({
        figure: `admin API ${row.scenario} (p99 ${row["p99 ms"]} ms, target < 5)`,
        value: row["req/s"],
        unit: "req/s",
        ...(target && { target }),
        note: `p50 ${row["p50 ms"]} ms, p99 ${row["p99 ms"]} ms, non-2xx ${row.non2xx}`,
      });
    }
  });
} finally {
  await removeImages();
  await rm(work, { recursive: true, force: true });
}

function verdict(f: Figure): { vs: string; ok: string; target: string } {
  const t = f.target;
  const ratio = f.anchorValue ? f.value / f.anchorValue : undefined;
  const delta = f.anchorValue !== undefined ? f.value - f.anchorValue : undefined;
  const vs =
    ratio === undefined
      ? ""
      : `${ratio.toFixed(2)}x (${delta! >= 0 ? "+" : ""}${delta!.toFixed(2)})`;
  if (!t) return { vs, ok: "", target: "" };
  const met =
    t.kind === "ratio<="
      ? ratio !== undefined && ratio <= t.x
      : t.kind === "delta<="
        ? delta !== undefined && delta <= t.x
        : t.kind === "<="
          ? f.value <= t.x
          : f.value >= t.x;
  const target =
    t.kind === "ratio<="
      ? `<= ${t.x}x`
      : t.kind === "delta<="
        ? `<= +${t.x} s`
        : `${t.kind.slice(0, 2)} ${t.x}`;
  return { vs, ok: met ? "yes" : "NO", target };
}

const fmt = (v: number | undefined, unit: string) =>
  v === undefined ? "" : unit === "req/s" ? `${Math.round(v)} ${unit}` : `${v.toFixed(2)} ${unit}`;
const rows = figures.map((f) => {
  const v = verdict(f);
  return {
    figure: f.figure,
    value: fmt(f.value, f.unit),
    anchor: f.anchor ? `${f.anchor}: ${fmt(f.anchorValue, f.unit === "req/s" ? "" : f.unit)}` : "",
    "vs anchor": v.vs,
    target: v.target,
    met: v.ok,
  };
});
const header = ["figure", "value", "anchor", "vs anchor", "target", "met"] as const;
const widths = header.map((h) => Math.max(h.length, ...rows.map((r) => r[h].length)));
const line = (cells: string[]) =>
  "| " + cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
const machineAfter = loadavg().map((x) => +x.toFixed(2));
console.log(
  `iac-wrapper benchmark: ${machine.cores} cores, node ${machine.node}, Docker ${machine.docker}, ` +
    `load average ${machine.loadBefore.join(" ")} before, ${machineAfter.join(" ")} after; medians of ${ROUNDS}`,
);
console.log(line([...header]));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(header.map((h) => r[h])));
for (const n of notes) console.log(`note: ${n}`);
const dirOut = path.join(ROOT, "bench", "results");
await mkdir(dirOut, { recursive: true });
const file = path.join(dirOut, `perf-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
await writeFile(
  file,
  JSON.stringify(
    { machine: { ...machine, loadAfter: machineAfter }, rounds: ROUNDS, figures, notes },
    null,
    2,
  ) + "\n",
);
console.log(`JSON: ${path.relative(ROOT, file)}`);
