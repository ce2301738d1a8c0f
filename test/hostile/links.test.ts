// Issue 11, H1: a symbolic link in a repository must never make the host read a file outside
// the tree — on any fetch path (GitHub tarball, shallow clone, file:), wherever the tree is
// verified, and in every host-side reader (detection, requirements, pyproject, .dockerignore).
// Real git repos, the real local GitHub stand-in, no Docker.
import { mkdtempSync } from "node:fs";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import { FetchError, fetchSource } from "../../src/source/fetch.js";
import { parseSlug } from "../../src/intake/slug.js";
import { SourceTree, UnsafeTreeError } from "../../src/detect/tree.js";
import { appRequirements } from "../../src/image/wheelhouse.js";
import { createGitRepo, type FixtureRepo } from "../helpers/git-fixtures.js";
import { startGitHubServer, type GitHubServer } from "../helpers/github-server.js";

const CANARY = "LEAKED-CANARY-4711";
const tmp = mkdtempSync(path.join(tmpdir(), "iac-hostile-links-"));
const secret = path.join(tmp, "host-secret.toml");
let srv: GitHubServer;
let n = 0;
const repos: FixtureRepo[] = [];

function config(): Config {
  return loadConfig({
    GITHUB_API_URL: srv.apiUrl,
    GITHUB_SERVER_URL: srv.serverUrl,
    IAC_CACHE_DIR: path.join(tmp, `cache-${n++}`),
    IAC_FETCH_TIMEOUT_S: "20",
    IAC_ALLOWED_GIT_HOSTS: "127.0.0.1", // the local git server
  });
}

/** Components of the folder a tree is renamed to: sources/<commit> in the cache. */
function cacheDepth(cfg: Config): number {
  return path.join(cfg.cacheDir, "sources", "0".repeat(40)).split(path.sep).filter(Boolean).length;
}

/**
 * The chained link: `sub/x -> ..`, and a file whose target climbs exactly as many
 * levels as the final cache folder is deep. In the temp folder where the tree is verified
 * (two levels deeper) it dangles and textually stays inside; after the rename it is `secret`.
 */
function chainedTarget(depth: number, abs: string): string {
  return "sub/x/".repeat(depth) + "../".repeat(depth) + abs.slice(1);
}

async function hostileRepo(depth: number, file: string, abs: string): Promise<FixtureRepo> {
  const repo = await createGitRepo({
    "main.py": "print('hi')\n",
    "sub/x": { symlink: ".." },
    [file]: { symlink: chainedTarget(depth, abs) },
  });
  repos.push(repo);
  return repo;
}

beforeAll(async () => {
  await writeFile(secret, `[tool.iac]\nentrypoint = "${CANARY}"\n`);
  srv = await startGitHubServer({});
});
afterAll(async () => {
  await srv?.close();
  await Promise.all(repos.map((r) => r.cleanup()));
  await rm(tmp, { recursive: true, force: true });
});

async function expectRefused(raw: string, cfg: Config): Promise<FetchError> {
  let got: unknown;
  try {
    const src = await fetchSource(parseSlug(raw), { config: cfg });
    // Today's code gets here: show what detection would have read.
    got = await detectEntrypoint(src).catch((e: Error) => e.message);
  } catch (err) {
    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).reason).toBe("unsafe-archive");
    expect((err as Error).message).toMatch(/symbolic link '.*' (is dangling|resolves outside)/);
    expect(JSON.stringify(err)).not.toContain(CANARY);
    expect((err as Error).message).not.toContain(CANARY);
    return err as FetchError;
  }
  throw new Error(`expected ${raw} to be refused, got ${JSON.stringify(got)}`);
}

describe("H1: chained links that land outside after the rename into the cache", () => {
  it("GitHub tarball path", async () => {
    const cfg = config();
    const repo = await hostileRepo(cacheDepth(cfg), "pyproject.toml", secret);
    await srv.addRepo("evil/tarball", repo.dir);
    await expectRefused("gh:evil/tarball#main", cfg);
  });

  it("shallow clone path", async () => {
    const cfg = config();
    const repo = await hostileRepo(cacheDepth(cfg), "pyproject.toml", secret);
    await srv.addRepo("evil/clone", repo.dir);
    await expectRefused(`git+${srv.serverUrl}/evil/clone.git#main`, cfg);
  });

  it("file: slug (git archive of the work tree)", async () => {
    const cfg = config();
    const repo = await hostileRepo(cacheDepth(cfg), "pyproject.toml", secret);
    await expectRefused(`file:${repo.dir}`, cfg);
  });

  it("file: slug with uncommitted changes (folder copy)", async () => {
    const cfg = config();
    const repo = await hostileRepo(cacheDepth(cfg), "pyproject.toml", secret);
    await writeFile(path.join(repo.dir, "dirty.txt"), "x\n");
    await expectRefused(`file:${repo.dir}`, cfg);
  });

  it("a dangling link is refused, not judged by its text", async () => {
    const cfg = config();
    const repo = await createGitRepo({
      "main.py": "print('hi')\n",
      "later.txt": { symlink: "not/there/yet" },
    });
    repos.push(repo);
    const err = await expectRefused(`file:${repo.dir}`, cfg);
    expect(err.message).toMatch(/later\.txt/);
  });

  it("requirements.txt linking to /proc/self/environ (chained) is refused", async () => {
    const cfg = config();
    const repo = await hostileRepo(cacheDepth(cfg), "requirements.txt", "/proc/self/environ");
    await srv.addRepo("evil/environ", repo.dir);
    await expectRefused("gh:evil/environ#main", cfg);
  });
});

describe("H1: every host-side read goes through the SourceTree reader", () => {
  // A tree that was never verified (e.g. planted in the cache): the reader itself refuses.
  let root: string;
  beforeAll(async () => {
    root = path.join(tmp, "planted");
    await mkdir(path.join(root, "sub"), { recursive: true });
    await writeFile(path.join(root, "main.py"), "print('hi')\n");
    await symlink("..", path.join(root, "sub", "x"));
  });

  const plant = async (name: string, target: string) => {
    await rm(path.join(root, name), { force: true });
    await symlink(target, path.join(root, name));
  };
  const source = () => ({ root, dir: root, commit: "0".repeat(40), via: "cache" as const });

  it.each([
    ["absolute", () => secret],
    ["chained through sub/x", () => "sub/x/sub/x/../../" + path.relative(root, secret)],
    ["plain ..", () => path.relative(root, secret)],
  ])("pyproject.toml as an %s link: detection refuses, never reads", async (_k, target) => {
    await plant("pyproject.toml", target());
    const err = await detectEntrypoint(source()).then(
      (e) => new Error(`detected ${JSON.stringify(e)}`),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(UnsafeTreeError);
    expect(err.message).not.toContain(CANARY);
    await rm(path.join(root, "pyproject.toml"));
  });

  it("requirements.txt and -r includes: refused when a link leaves the root", async () => {
    await writeFile(path.join(tmp, "host-reqs.txt"), `https://${CANARY}\n`);
    await plant("requirements.txt", path.join(tmp, "host-reqs.txt"));
    await expect(appRequirements(source(), { installProject: false })).rejects.toBeInstanceOf(
      UnsafeTreeError,
    );
    await rm(path.join(root, "requirements.txt"));
    await writeFile(path.join(root, "requirements.txt"), "-r sub/x/sub/x/../../../host-reqs.txt\n");
    const err = await appRequirements(source(), { installProject: false }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).not.toContain(CANARY);
    await rm(path.join(root, "requirements.txt"));
  });

  it("the reader opens with O_NOFOLLOW and resolves links inside the root only", async () => {
    const tree = new SourceTree(root);
    await writeFile(path.join(root, "ok.txt"), "fine\n");
    await plant("alias.txt", "sub/x/ok.txt");
    expect(await tree.readText("alias.txt")).toBe("fine\n");
    await plant("out.txt", "sub/x/../host-secret.toml");
    await expect(tree.readText("out.txt")).rejects.toBeInstanceOf(UnsafeTreeError);
    expect(await tree.readText("missing.txt")).toBeUndefined();
  });
});
