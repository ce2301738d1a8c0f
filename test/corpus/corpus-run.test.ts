// The real-world corpus, built and run: every entry of test/helpers/corpus.ts with `run` is
// fetched from the local GitHub stand-in (a tarball: no .git), detected, built into an image
// by the real pipeline (host wheelhouse, offline image build on the local base image) and run
// the way the Terraform module runs it (IAC_SIDECAR=none); the runner's HealthCheck over mTLS
// must reach the entry's SERVING / NOT_SERVING, and its logs the entry's pattern. Entries with
// `buildError` must fail the build with that message. Prints the build and run times.
import path from "node:path";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import { HealthStatus_Status } from "../../src/gen/controlplane.js";
import { buildImage } from "../../src/image/build.js";
import { parseServiceList } from "../../src/intake/repofile.js";
import { parseSlug } from "../../src/intake/slug.js";
import type { Config } from "../../src/kernel/config.js";
import { formatError } from "../../src/kernel/errors.js";
import type { BuiltImage } from "../../src/kernel/types.js";
import { mapLimit } from "../../src/platform/limit.js";
import { waitForServing } from "../../src/runtime/client.js";
import { fetchSource } from "../../src/source/fetch.js";
import {
  CORPUS,
  type CorpusEntry,
  corpusService,
  logsAfterMainExit,
  serveCorpus,
} from "../helpers/corpus.js";
import { type CorpusEnv, startCorpusEnv } from "../helpers/corpus-env.js";
import type { GitHubServer } from "../helpers/github-server.js";
import {
  runApp,
  TEST_LABEL,
  type RuntimeCerts,
  dockerSkipReason,
} from "../helpers/runtime-fixtures.js";

const RUN = CORPUS.filter((e) => e.run);
const CORPUS_LABEL = { ...TEST_LABEL, "io.iac.corpus": "1" };
/** Builds at a time: 2 cores; pip and the image builds are mostly CPU and disk. */
const PARALLEL = 3;

const skipReason = await dockerSkipReason();
if (skipReason) console.warn(`SKIPPING the corpus build-and-run tests: ${skipReason}`);

interface Outcome {
  entry: CorpusEntry;
  image?: BuiltImage;
  buildError?: string;
  buildMs: number;
  health?: HealthStatus_Status;
  message?: string;
  logs?: string;
  runMs?: number;
}

describe.skipIf(skipReason !== undefined)("real-world corpus: build and run", () => {
  let env: CorpusEnv | undefined;
  let docker: Docker;
  let config: Config;
  let srv: GitHubServer;
  let root: CorpusEnv["root"];
  let certs: RuntimeCerts;
  let cleanupRepos: (() => Promise<void>) | undefined;
  const containers: Docker.Container[] = [];
  const images: BuiltImage[] = [];
  const outcomes = new Map<string, Outcome>();
  const runId = Date.now().toString(36);

  beforeAll(async () => {
    const t0 = Date.now();
    // The default cache dir: wheelhouses are shared with every other build on this machine.
    env = await startCorpusEnv("iac-corpus-run-");
    ({ docker, root, srv, config, certs } = env);
    ({ cleanup: cleanupRepos } = await serveCorpus(srv, RUN));
    await mapLimit(RUN, PARALLEL, async (entry) => {
      const service = `cx-${entry.name}`.slice(0, 63);
      const t = Date.now();
      const out: Outcome = { entry, buildMs: 0 };
      outcomes.set(entry.name, out);
      try {
        const slug = parseSlug(String(corpusService(entry).slug));
        // A cache folder of this run's own: every fetch is a tarball (no .git), as GitHub serves it.
        const source = await fetchSource(slug, {
          config: { ...config, cacheDir: path.join(root.dir, "cache") },
          service,
        });
        expect(source.via).toBe("tarball");
        // The entry's repos file keys (entrypoint, build, labels, telemetry) as iac reads them.
        const spec = parseServiceList({ services: [corpusService(entry)] }, "corpus", root.dir)[0]!;
        const ep = await detectEntrypoint(source, spec);
        const labels = Object.entries(spec.labels ?? {}).filter(([k]) => k !== "io.iac.entrypoint");
        out.image = await buildImage({
          config,
          service,
          slug,
          source,
          entrypoint: ep,
          docker,
          labels: { ...CORPUS_LABEL, ...Object.fromEntries(labels) },
          // OpenTelemetry in the app has its own entries (otel-*) and app-telemetry.test.ts;
          // the others build without it, as before it existed, to keep this suite's time.
          telemetry: spec.telemetry ?? "off",
        });
        images.push(out.image);
      } catch (err) {
        out.buildError = formatError(err);
      }
      out.buildMs = Date.now() - t;
    });
    const buildWall = Date.now() - t0;

    const t1 = Date.now();
    await Promise.all(
      [...outcomes.values()]
        .filter((o) => o.image)
        .map(async (o) => {
          const service = `cx-${o.entry.name}`.slice(0, 63);
          const t = Date.now();
          const { container, port } = await runApp(docker, o.image!.tag, {
            name: `cx-${o.entry.name}-${runId}`.slice(0, 120),
            service,
            certDir: await certs.serviceDir(service),
          });
          containers.push(container);
          const target = { host: "127.0.0.1", port, serverName: service };
          const health = () =>
            waitForServing(target, certs.controlPlane, { deadlineMs: 90_000 }).catch(
              (err: Error) => ({ status: HealthStatus_Status.UNKNOWN, message: err.message }),
            );
          await health();
          // The answer that counts is the one after main() finished (SERVING after exit 0).
          o.logs = await logsAfterMainExit(container);
          const status = await health();
          o.health = status.status;
          o.message = status.message;
          o.runMs = Date.now() - t;
        }),
    );
    const runWall = Date.now() - t1;
    console.info(
      `corpus: ${RUN.length} entries built and run (${CORPUS.length} in the corpus); ` +
        `build wall ${(buildWall / 1000).toFixed(1)} s, run wall ${(runWall / 1000).toFixed(1)} s`,
    );
    console.info(
      "corpus per entry:",
      Object.fromEntries(
        [...outcomes].map(([k, o]) => [
          k,
          `build ${(o.buildMs / 1000).toFixed(1)} s${o.image ? (o.image.built ? "" : " (cached)") : " (failed)"}` +
            (o.runMs !== undefined
              ? `, to ${HealthStatus_Status[o.health!]} ${(o.runMs / 1000).toFixed(1)} s`
              : ""),
        ]),
      ),
    );
  });

  afterAll(async () => {
    await env?.stop({ containers, images });
    await cleanupRepos?.();
  });

  it("covers every build backend and at least 10 fixtures", () => {
    expect(RUN.length).toBeGreaterThanOrEqual(10);
    const backends = new Set(
      RUN.map(
        (e) =>
          /build-backend = "([^"]+)"/.exec(String(e.files["pyproject.toml"] ?? ""))?.[1] ??
          "legacy",
      ),
    );
    for (const b of [
      "setuptools.build_meta",
      "hatchling.build",
      "flit_core.buildapi",
      "pdm.backend",
      "poetry.core.masonry.api",
      "maturin",
      "legacy",
    ])
      expect(backends, b).toContain(b);
  });

  it.each(RUN.map((e) => [e.name, e] as const))("%s", (_name, entry) => {
    const o = outcomes.get(entry.name)!;
    const want = entry.run!;
    if (want.buildError) {
      expect(o.image, `${entry.name} built but should have failed`).toBeUndefined();
      expect(o.buildError).toMatch(want.buildError);
      return;
    }
    expect(o.buildError, `${entry.name}: ${o.buildError}`).toBeUndefined();
    expect(HealthStatus_Status[o.health!], `${entry.name}: ${o.message}\n${o.logs}`).toBe(
      want.health,
    );
    if (want.logs) expect(o.logs, entry.name).toMatch(want.logs);
  });
});
