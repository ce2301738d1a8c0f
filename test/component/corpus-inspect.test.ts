// The real-world corpus (test/helpers/corpus.ts) through the real CLI: every fixture is served
// by the local GitHub stand-in (tarball: no .git, as GitHub serves it) and `iac inspect
// --output json` must report what its entry expects. No Docker.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CORPUS, corpusReposFile, serveCorpus } from "../helpers/corpus.js";
import type { FixtureRepo } from "../helpers/git-fixtures.js";
import { type GitHubServer, startGitHubServer } from "../helpers/github-server.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const tmp = mkdtempSync(path.join(tmpdir(), "iac-corpus-inspect-"));
let srv: GitHubServer;
let repos: Map<string, FixtureRepo>;
let cleanup: (() => Promise<void>) | undefined;

function iac(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin/iac.js"), ...args], {
      cwd: tmp,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? tmp,
        GITHUB_API_URL: srv.apiUrl,
        GITHUB_SERVER_URL: srv.serverUrl,
        IAC_CACHE_DIR: path.join(tmp, "cache"),
        ...env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

beforeAll(async () => {
  srv = await startGitHubServer();
  ({ repos, cleanup } = await serveCorpus(srv, CORPUS));
  writeFileSync(path.join(tmp, "corpus.json"), corpusReposFile(CORPUS));
});

afterAll(async () => {
  await srv?.close();
  await cleanup?.();
  await rm(tmp, { recursive: true, force: true });
});

describe("real-world corpus: iac inspect", () => {
  it("has at least 25 fixtures with unique names", () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(25);
    expect(new Set(CORPUS.map((e) => e.name)).size).toBe(CORPUS.length);
  });

  it("reports each fixture's entrypoint (or its error) as its entry expects", async () => {
    const { code, stdout, stderr } = await iac([
      "inspect",
      "--file",
      "corpus.json",
      "--output",
      "json",
    ]);
    const failing = CORPUS.some((e) => "error" in e.inspect);
    expect(code, stderr).toBe(failing ? 1 : 0);
    const doc = JSON.parse(stdout) as { services: Array<Record<string, unknown>> };
    expect(doc.services.map((s) => s.name)).toEqual(CORPUS.map((e) => e.name));
    for (const [i, svc] of doc.services.entries()) {
      const e = CORPUS[i]!;
      const want = e.inspect;
      // Every fixture is fetched by tarball: the commit is the repo's HEAD (or its tag).
      expect(svc.commit, e.name).toBe(repos.get(e.name)!.commit);
      if ("error" in want) {
        expect(svc.entrypoint, e.name).toBeUndefined();
        expect(svc.error, e.name).toMatch(want.error);
        continue;
      }
      expect(svc.error, `${e.name}: ${String(svc.error)}`).toBeUndefined();
      expect(svc.entrypoint, e.name).toEqual({ kind: want.kind, argv: want.argv, rule: want.rule });
      expect(svc.build, e.name).toBe(want.build);
      if (want.version !== undefined) {
        if (typeof want.version === "string") expect(svc.version, e.name).toBe(want.version);
        else expect(svc.version, e.name).toMatch(want.version);
      }
    }
    expect(stderr).toMatch(/tarball: downloading corpus\//);
  });

  it("the version comes from the ref for clone and file: sources too (no .git in the tree)", async () => {
    const repo = repos.get("hatch-vcs")!;
    const clone = `git+${srv.serverUrl}/corpus/hatch-vcs.git#v1.4.2`;
    const local = `file:${path.relative(tmp, repo.dir)}`;
    writeFileSync(
      path.join(tmp, "sources.json"),
      JSON.stringify({
        services: [
          { slug: clone, name: "as-clone" },
          { slug: `${local}#v1.4.2`, name: "as-file-tag" },
          { slug: local, name: "as-file-head" },
        ],
      }),
    );
    const { code, stdout, stderr } = await iac(
      ["inspect", "--file", "sources.json", "--output", "json"],
      // a cache of its own: the first test already fetched this commit as a tarball
      { IAC_ALLOWED_GIT_HOSTS: "127.0.0.1", IAC_CACHE_DIR: path.join(tmp, "cache-sources") },
    );
    expect(code, stderr).toBe(0);
    const doc = JSON.parse(stdout) as { services: Array<Record<string, unknown>> };
    expect(doc.services.map((s) => [s.name, s.commit, s.version])).toEqual([
      ["as-clone", repo.commit, "1.4.2"],
      ["as-file-tag", repo.commit, "1.4.2"],
      ["as-file-head", repo.commit, `0.0.0+g${repo.commit.slice(0, 7)}`],
    ]);
    expect(stderr).toMatch(/shallow git fetch/);
  });
});
