// The bundled repos.yaml, deployed for real against local copies (issue 12, item 7): the
// released sources of its two repositories (test/fixtures/bundled-repos.txt, pinned by sha256,
// downloaded once by the host's pip and cached) become git repos tagged like upstream, served by
// the local GitHub stand-in as `pypa/sampleproject` and `asottile/pyupgrade`. Every service of
// the real repos.yaml is then fetched (tarball), detected, built and run to SERVING.
//
// The local copy is the release's sdist without its packaging metadata (PKG-INFO, *.egg-info):
// the files a build reads (pyproject.toml, setup.cfg, setup.py, the package) are the tag's.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import { deriveVersion } from "../../src/detect/version.js";
import { HealthStatus_Status } from "../../src/gen/controlplane.js";
import { buildImage } from "../../src/image/build.js";
import { hostPython } from "../../src/image/wheelhouse.js";
import { loadReposFile } from "../../src/intake/repofile.js";
import type { Config } from "../../src/kernel/config.js";
import type { BuiltImage, ServiceSpec } from "../../src/kernel/types.js";
import { waitForServing } from "../../src/runtime/client.js";
import { fetchSource } from "../../src/source/fetch.js";
import { logsAfterMainExit } from "../helpers/corpus.js";
import { createGitRepo, type FixtureRepo } from "../helpers/git-fixtures.js";
import { type CorpusEnv, startCorpusEnv } from "../helpers/corpus-env.js";
import type { GitHubServer } from "../helpers/github-server.js";
import {
  runApp,
  TEST_LABEL,
  type RuntimeCerts,
  dockerSkipReason,
} from "../helpers/runtime-fixtures.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const PINS = path.join(ROOT, "test/fixtures/bundled-repos.txt");
/** What each service prints when it runs (its entrypoint from repos.yaml or detection). */
const EXPECTED: Record<string, { owner: string; project: string; logs: RegExp }> = {
  sampleproject: {
    owner: "pypa",
    project: "sampleproject",
    logs: /Call your main application code here/,
  },
  pyupgrade: { owner: "asottile", project: "pyupgrade", logs: /usage: pyupgrade/ },
};

const skipReason = await dockerSkipReason();
if (skipReason) console.warn(`SKIPPING the bundled repos.yaml test: ${skipReason}`);

/** The pinned sdists, downloaded by the host's pip with --require-hashes into the cache. */
async function pinnedSdists(cacheDir: string): Promise<Map<string, string>> {
  const dir = path.join(cacheDir, "bundled-repos");
  const pins = new Map<string, { version: string; sha: string }>();
  for (const line of readFileSync(PINS, "utf8").split("\n")) {
    const m = /^([a-z0-9-]+)==(\S+) --hash=sha256:([0-9a-f]{64})$/.exec(line.trim());
    if (m) pins.set(m[1]!, { version: m[2]!, sha: m[3]! });
  }
  const file = (name: string, version: string) => path.join(dir, `${name}-${version}.tar.gz`);
  const ok = (name: string) => {
    const p = pins.get(name)!;
    const f = file(name, p.version);
    return existsSync(f) && createHash("sha256").update(readFileSync(f)).digest("hex") === p.sha;
  };
  if (![...pins.keys()].every(ok)) {
    await mkdir(dir, { recursive: true });
    execFileSync(
      hostPython(),
      [
        ...["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input"],
        ...["--no-deps", "--no-binary", ":all:", "--require-hashes", "-r", PINS, "-d", dir],
      ],
      { stdio: ["ignore", "inherit", "inherit"], timeout: 300_000 },
    );
  }
  for (const name of pins.keys()) if (!ok(name)) throw new Error(`${name}: sdist hash mismatch`);
  return new Map([...pins].map(([n, p]) => [n, file(n, p.version)]));
}

describe.skipIf(skipReason !== undefined)("the bundled repos.yaml (local copies)", () => {
  let env: CorpusEnv | undefined;
  let docker: Docker;
  let config: Config;
  let srv: GitHubServer;
  let root: CorpusEnv["root"];
  let certs: RuntimeCerts;
  let specs: ServiceSpec[];
  const repos: FixtureRepo[] = [];
  const images: BuiltImage[] = [];
  const containers: Docker.Container[] = [];
  const runId = Date.now().toString(36);

  beforeAll(async () => {
    env = await startCorpusEnv("iac-bundled-");
    ({ docker, root, srv, config, certs } = env);
    specs = await loadReposFile(path.join(ROOT, "repos.yaml"));
    const sdists = await pinnedSdists(config.cacheDir);
    for (const spec of specs) {
      const want = EXPECTED[spec.name];
      if (!want || spec.slug.kind !== "github") continue;
      const sdist = sdists.get(want.project)!;
      const dir = path.join(root.dir, "src", want.project);
      await mkdir(dir, { recursive: true });
      execFileSync("tar", ["-xzf", sdist, "-C", dir, "--strip-components=1", "--no-same-owner"]);
      await rm(path.join(dir, "PKG-INFO"), { force: true });
      for (const base of [dir, path.join(dir, "src")])
        for (const f of await readdir(base).catch(() => []))
          if (f.endsWith(".egg-info")) await rm(path.join(base, f), { recursive: true });
      const repo = await createGitRepo({}, { dir });
      repo.git("add", "--all");
      repo.git("commit", "--quiet", "--amend", "-m", `${want.project} release`);
      repo.commit = repo.git("rev-parse", "HEAD");
      if (spec.slug.ref) repo.tag(spec.slug.ref);
      repos.push(repo);
      await srv.addRepo(`${spec.slug.owner}/${spec.slug.repo}`, dir);
    }
  });

  afterAll(async () => {
    await env?.stop({ containers, images });
  });

  it("lists exactly the two repositories this test has local copies of, pinned to release tags", () => {
    expect(specs.map((s) => s.name).sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const s of specs) {
      expect(s.slug.kind).toBe("github");
      expect(s.slug.ref, s.slug.raw).toMatch(/^v\d+\.\d+\.\d+$/);
      const pinned = readFileSync(PINS, "utf8");
      expect(pinned).toContain(`${EXPECTED[s.name]!.project}==${s.slug.ref!.slice(1)} `);
    }
  });

  it("every service is fetched as a tarball, built offline and runs to SERVING", async () => {
    await Promise.all(
      specs.map(async (spec) => {
        const want = EXPECTED[spec.name]!;
        const service = `bundled-${spec.name}`;
        const lines: string[] = [];
        // A cache folder of this run's own: every fetch is a tarball, as on a first deploy.
        const source = await fetchSource(spec.slug, {
          config: { ...config, cacheDir: path.join(root.dir, "cache") },
          service,
          onEvent: (e) => void (e.type === "log" && lines.push(e.line)),
        });
        expect(source.via).toBe("tarball");
        const ep = await detectEntrypoint(source, spec.entrypoint);
        expect(ep.installProject).toBe(true);
        expect(deriveVersion(spec.slug.ref, source.commit).version).toBe(spec.slug.ref!.slice(1));
        const image = await buildImage({
          config,
          service,
          slug: spec.slug,
          source,
          entrypoint: ep,
          docker,
          labels: TEST_LABEL,
        });
        images.push(image);
        const info = await docker.getImage(image.tag).inspect();
        expect(info.Config.Labels?.["org.opencontainers.image.version"]).toBe(
          spec.slug.ref!.slice(1),
        );
        const { container, port } = await runApp(docker, image.tag, {
          name: `${service}-${runId}`,
          service,
          certDir: await certs.serviceDir(service),
        });
        containers.push(container);
        const target = { host: "127.0.0.1", port, serverName: service };
        await waitForServing(target, certs.controlPlane, { deadlineMs: 90_000 });
        // The answer that counts is the one after main() finished (SERVING after exit 0).
        const logs = await logsAfterMainExit(container);
        const status = await waitForServing(target, certs.controlPlane, { deadlineMs: 90_000 });
        expect(HealthStatus_Status[status.status], `${spec.name}: ${status.message}\n${logs}`).toBe(
          "SERVING",
        );
        expect(logs, spec.name).toMatch(want.logs);
      }),
    );
  });
});
