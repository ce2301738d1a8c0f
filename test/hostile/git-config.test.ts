// Issue 11, M1: fetching never runs anything a repository (or the user's git config)
// configures: no core.fsmonitor, no clean/smudge filters, no hooks; git is isolated from the
// global and system config on every fetch path. Markers are files a command would create.
import { existsSync, mkdtempSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import { fetchSource } from "../../src/source/fetch.js";
import { parseSlug } from "../../src/intake/slug.js";
import { createGitRepo, type FixtureRepo } from "../helpers/git-fixtures.js";
import { startGitHubServer, type GitHubServer } from "../helpers/github-server.js";

const tmp = mkdtempSync(path.join(tmpdir(), "iac-hostile-git-"));
const markers = path.join(tmp, "markers");
let srv: GitHubServer;
let n = 0;
const repos: FixtureRepo[] = [];
const config = (): Config =>
  loadConfig({
    GITHUB_API_URL: srv.apiUrl,
    GITHUB_SERVER_URL: srv.serverUrl,
    IAC_CACHE_DIR: path.join(tmp, `cache-${n++}`),
    IAC_FETCH_TIMEOUT_S: "20",
    IAC_ALLOWED_GIT_HOSTS: "127.0.0.1", // the local git server
  });
const marker = (name: string) => `touch ${path.join(markers, name)}`;
const fired = async () =>
  existsSync(markers) ? (await import("node:fs")).readdirSync(markers) : [];

/** A repo whose own .git/config and .gitattributes try to run commands on the host. */
async function hostileRepo(): Promise<FixtureRepo> {
  const repo = await createGitRepo({
    "main.py": "print('hi')\n",
    ".gitattributes": "* filter=evil\n*.py filter=evil\n",
  });
  repos.push(repo);
  repo.git("config", "core.fsmonitor", `${marker("fsmonitor")}; false`);
  repo.git("config", "filter.evil.smudge", `sh -c '${marker("smudge")}; cat'`);
  repo.git("config", "filter.evil.clean", `sh -c '${marker("clean")}; cat'`);
  repo.git("config", "filter.evil.process", marker("process"));
  repo.git("config", "core.untrackedCache", "true");
  for (const hook of [
    "post-checkout",
    "pre-auto-gc",
    "reference-transaction",
    "post-index-change",
  ]) {
    await writeFile(path.join(repo.dir, ".git", "hooks", hook), `#!/bin/sh\n${marker(hook)}\n`, {
      mode: 0o755,
    });
  }
  return repo;
}

beforeAll(async () => {
  srv = await startGitHubServer({});
});
afterEach(async () => {
  await rm(markers, { recursive: true, force: true });
  await mkdir(markers, { recursive: true });
});
afterAll(async () => {
  await srv?.close();
  await Promise.all(repos.map((r) => r.cleanup()));
  await rm(tmp, { recursive: true, force: true });
});

describe("M1: the target repository's git config, filters and hooks never run", () => {
  it.each([
    ["committed work tree (HEAD)", async (r: FixtureRepo) => `file:${r.dir}`],
    ["an explicit #ref", async (r: FixtureRepo) => `file:${r.dir}#main`],
    [
      "a dirty work tree (status, ls-files)",
      async (r: FixtureRepo) => {
        await writeFile(path.join(r.dir, "main.py"), "print('changed')\n");
        await writeFile(path.join(r.dir, "new.py"), "print('new')\n");
        return `file:${r.dir}`;
      },
    ],
  ])("file: slug, %s", async (_what, slugOf) => {
    await mkdir(markers, { recursive: true });
    const repo = await hostileRepo();
    const src = await fetchSource(parseSlug(await slugOf(repo)), { config: config() });
    expect(await fired()).toEqual([]);
    // The bytes are the committed (or work tree) bytes, not a filter's output.
    expect(await readFile(path.join(src.dir, "main.py"), "utf8")).toMatch(/^print\(/);
  });
});

describe("M1: git is isolated from the user's global config on every fetch path", () => {
  let home: string;
  let savedHome: string | undefined;
  beforeAll(async () => {
    home = path.join(tmp, "home");
    await mkdir(home, { recursive: true });
    // What ~/.gitconfig often carries: LFS filters, fsmonitor, insteadOf rewrites, helpers.
    await writeFile(
      path.join(home, ".gitconfig"),
      [
        "[core]",
        `\tfsmonitor = ${marker("global-fsmonitor")}; false`,
        `\thooksPath = ${path.join(home, "hooks")}`,
        '[filter "lfs"]',
        `\tsmudge = sh -c '${marker("global-smudge")}; cat'`,
        `\tclean = sh -c '${marker("global-clean")}; cat'`,
        "\trequired = true",
        '[url "http://127.0.0.1:9/"]',
        `\tinsteadOf = ${srv.serverUrl}/`,
        "[credential]",
        `\thelper = !${marker("global-credential")}`,
        "",
      ].join("\n"),
    );
    savedHome = process.env.HOME;
    process.env.HOME = home;
  });
  afterAll(() => {
    process.env.HOME = savedHome;
  });

  async function lfsRepo(name: string): Promise<FixtureRepo> {
    const repo = await createGitRepo({
      "main.py": "print('hi')\n",
      ".gitattributes": "*.py filter=lfs\n",
    });
    repos.push(repo);
    await srv.addRepo(name, repo.dir);
    return repo;
  }

  it("shallow clone (git+http): no global filter, fsmonitor, insteadOf or helper applies", async () => {
    await mkdir(markers, { recursive: true });
    await lfsRepo("acme/lfs-clone");
    const src = await fetchSource(parseSlug(`git+${srv.serverUrl}/acme/lfs-clone.git#main`), {
      config: config(),
    });
    expect(src.via).toBe("clone");
    expect(await fired()).toEqual([]);
  });

  it("file: slug: no global filter or fsmonitor applies", async () => {
    await mkdir(markers, { recursive: true });
    const repo = await lfsRepo("acme/lfs-file");
    await writeFile(path.join(repo.dir, "main.py"), "print('dirty')\n");
    await fetchSource(parseSlug(`file:${repo.dir}`), { config: config() });
    await fetchSource(parseSlug(`file:${repo.dir}#main`), { config: config() });
    expect(await fired()).toEqual([]);
  });
});
