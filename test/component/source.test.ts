// Source intake against a local server speaking GitHub's API, codeload tarballs and git smart
// HTTP, over real git repositories built in temp dirs (no mocks of our own code).
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import type { DeployEvent } from "../../src/kernel/events.js";
import { FetchError, fetchSource } from "../../src/source/fetch.js";
import { parseSlug } from "../../src/intake/slug.js";
import { type FixtureRepo, createGitRepo, writeFixtureFiles } from "../helpers/git-fixtures.js";
import { type GitHubServer, startGitHubServer } from "../helpers/github-server.js";
import { type TarEntry, buildTarGz } from "../helpers/tar-builder.js";

const TOKEN = "ghp_testtoken123";
const tmp = mkdtempSync(path.join(tmpdir(), "iac-intake-"));
let srv: GitHubServer;
let hello: FixtureRepo;
let mono: FixtureRepo;
let secret: FixtureRepo;
let n = 0;

function config(env: Record<string, string> = {}): Config {
  return loadConfig({
    GITHUB_API_URL: srv.apiUrl,
    GITHUB_SERVER_URL: srv.serverUrl,
    IAC_CACHE_DIR: path.join(tmp, `cache-${n++}`),
    IAC_FETCH_TIMEOUT_S: "20",
    IAC_ALLOWED_GIT_HOSTS: "127.0.0.1", // the local git server
    ...env,
  });
}

function recorder(): { events: string[]; onEvent: (e: DeployEvent) => void } {
  const events: string[] = [];
  return { events, onEvent: (e) => e.type === "log" && events.push(e.line) };
}

async function fetchError(raw: string, cfg: Config): Promise<FetchError> {
  try {
    await fetchSource(parseSlug(raw), { config: cfg });
  } catch (err) {
    expect(err).toBeInstanceOf(FetchError);
    return err as FetchError;
  }
  throw new Error(`expected ${raw} to fail`);
}

/** Nothing half-written: no temp dirs and no entry for the commit left in the cache. */
function cacheEntries(cfg: Config): string[] {
  const dir = path.join(cfg.cacheDir, "sources");
  return existsSync(dir) ? readdirSync(dir) : [];
}

beforeAll(async () => {
  hello = await createGitRepo({
    "main.py": "def main():\n    print('hello')\n",
    "bin/tool": { content: "#!/bin/sh\necho tool\n", mode: 0o755 },
    "docs/link.md": { symlink: "../main.py" },
  });
  hello.tag("v1");
  await hello.addCommit({
    "main.py": "def main():\n    print('hello v2')\n\nif __name__ == '__main__':\n    main()\n",
  });
  mono = await createGitRepo({
    "README.md": "mono\n",
    "services/api/pyproject.toml":
      '[project]\nname = "api"\nversion = "0"\n[project.scripts]\napi = "api.cli:main"\n',
    "services/api/src/api/__init__.py": "",
    "services/api/src/api/cli.py": "def main():\n    pass\n",
    "services/worker/worker/__main__.py": "print('w')\n",
  });
  secret = await createGitRepo({ "__main__.py": "print('secret')\n" });
  srv = await startGitHubServer({ token: TOKEN });
  await srv.addRepo("acme/hello", hello.dir);
  await srv.addRepo("acme/mono", mono.dir);
  await srv.addRepo("acme/secret", secret.dir, { private: true });
  await srv.addRepo("evil/repo", hello.dir);
});

afterAll(async () => {
  await srv?.close();
  await Promise.all([hello, mono, secret].map((r) => r?.cleanup()));
  await rm(tmp, { recursive: true, force: true });
});

describe("fetch via the GitHub tarball", () => {
  it("resolves the ref, downloads, extracts (modes, links) and records the commit", async () => {
    const cfg = config();
    srv.reset();
    const { events, onEvent } = recorder();
    const src = await fetchSource(parseSlug("gh:acme/hello#main"), {
      config: cfg,
      service: "hello",
      onEvent,
    });
    expect(src).toMatchObject({ commit: hello.commit, via: "tarball" });
    expect(src.dir).toBe(path.join(cfg.cacheDir, "sources", hello.commit));
    expect(await readFile(path.join(src.dir, "main.py"), "utf8")).toContain("hello v2");
    expect((await stat(path.join(src.dir, "bin/tool"))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(src.dir, "main.py"))).mode & 0o777).toBe(0o644);
    expect(await readFile(path.join(src.dir, "docs/link.md"), "utf8")).toContain("hello v2");
    expect(events.join("\n")).toMatch(/resolve: main -> [0-9a-f]{40}/);
    expect(events.join("\n")).toMatch(/tarball: downloading acme\/hello/);
    expect(srv.requests.map((r) => `${r.kind} ${r.status}`)).toEqual([
      "api 200",
      "api 302",
      "codeload 200",
    ]);
    expect(srv.requests[0]!.path).toBe("/api/v3/repos/acme/hello/commits/main");
    expect(cacheEntries(cfg)).toEqual([hello.commit]);
  });

  it("a tag resolves to its commit (deterministic)", async () => {
    const cfg = config();
    const a = await fetchSource(parseSlug("gh:acme/hello#v1"), { config: cfg });
    const b = await fetchSource(parseSlug("gh:acme/hello#v1"), { config: cfg });
    const v1 = hello.git("rev-parse", "v1^{commit}");
    expect(a.commit).toBe(v1);
    expect(b).toEqual({ ...a, via: "cache" });
    expect(await detectEntrypoint(a)).toMatchObject({ kind: "python-main-function" });
  });

  it("cache: a second fetch of the same commit makes zero requests (SHA ref)", async () => {
    const cfg = config();
    const slug = parseSlug(`gh:acme/hello#${hello.commit}`);
    await fetchSource(slug, { config: cfg });
    srv.reset();
    const { events, onEvent } = recorder();
    const again = await fetchSource(slug, { config: cfg, onEvent });
    expect(again.via).toBe("cache");
    expect(srv.count()).toBe(0);
    expect(events.join("\n")).toMatch(/cache: commit .* already fetched, no download/);
  });

  it("cache: a branch ref costs one resolve request and no download", async () => {
    const cfg = config();
    await fetchSource(parseSlug("gh:acme/hello#main"), { config: cfg });
    srv.reset();
    const again = await fetchSource(parseSlug("gh:acme/hello#main"), { config: cfg });
    expect(again.via).toBe("cache");
    expect(srv.count({ kind: "api", path: /\/commits\// })).toBe(1);
    expect(
      srv.count({ kind: "codeload" }) + srv.count({ kind: "git" }) + srv.count({ path: /tarball/ }),
    ).toBe(0);
  });

  it("monorepo subdir: detection runs in the folder; a missing folder is a clear error", async () => {
    const cfg = config();
    const api = await fetchSource(parseSlug("gh:acme/mono//services/api"), { config: cfg });
    expect(api.dir).toBe(path.join(api.root, "services/api"));
    expect(await detectEntrypoint(api)).toMatchObject({
      kind: "console-script",
      argv: ["api"],
      installProject: true,
    });
    const worker = await fetchSource(parseSlug("gh:acme/mono//services/worker"), { config: cfg });
    expect(worker.via).toBe("cache"); // same commit, whole tree cached once
    expect(await detectEntrypoint(worker)).toMatchObject({
      kind: "python-module",
      argv: ["python", "-m", "worker"],
    });
    const err = await fetchError("gh:acme/mono//services/nope", cfg);
    expect(err.reason).toBe("subdir-not-found");
    expect(err.message).toContain("gh:acme/mono//services/nope");
  });
});

describe("clone fallback", () => {
  it("the tarball endpoint failing falls back to a shallow clone and says why", async () => {
    const cfg = config();
    srv.reset();
    srv.inject = (r) =>
      r.path.includes("/tarball/") ? { status: 502, body: "bad gateway" } : undefined;
    try {
      const { events, onEvent } = recorder();
      const src = await fetchSource(parseSlug("gh:acme/hello"), { config: cfg, onEvent });
      expect(src).toMatchObject({ commit: hello.commit, via: "clone" });
      expect(await readFile(path.join(src.dir, "main.py"), "utf8")).toContain("hello v2");
      expect((await stat(path.join(src.dir, "bin/tool"))).mode & 0o111).not.toBe(0);
      expect(events.join("\n")).toMatch(
        /clone: tarball failed \(HTTP 502 from the tarball endpoint\); falling back to a shallow git clone/,
      );
      expect(srv.count({ kind: "git" })).toBeGreaterThan(0);
      expect(cacheEntries(cfg)).toEqual([hello.commit]);
    } finally {
      srv.inject = undefined;
    }
  });

  it("the API being down: resolve with git ls-remote, then clone", async () => {
    const cfg = config();
    srv.inject = (r) => (r.kind === "api" ? { status: 503, body: "down" } : undefined);
    try {
      const { events, onEvent } = recorder();
      const v1 = hello.git("rev-parse", "v1^{commit}");
      const src = await fetchSource(parseSlug("gh:acme/hello#v1"), { config: cfg, onEvent });
      expect(src).toMatchObject({ commit: v1, via: "clone" });
      expect(events.join("\n")).toMatch(
        /GitHub API failed \(HTTP 503 .*\); resolving with git ls-remote/,
      );
    } finally {
      srv.inject = undefined;
    }
  });

  it("git+http slugs clone (branch and full SHA) and report ref-not-found", async () => {
    const cfg = config();
    const url = `git+${srv.serverUrl}/acme/hello.git`;
    expect(await fetchSource(parseSlug(`${url}#main`), { config: cfg })).toMatchObject({
      commit: hello.commit,
      via: "clone",
    });
    const v1 = hello.git("rev-parse", "v1^{commit}");
    expect(await fetchSource(parseSlug(`${url}#${v1}`), { config: cfg })).toMatchObject({
      commit: v1,
      via: "clone",
    });
    expect((await fetchError(`${url}#nope`, cfg)).reason).toBe("ref-not-found");
    expect((await fetchError(`git+${srv.serverUrl}/acme/missing.git`, cfg)).reason).toBe(
      "not-found",
    );
  });
});

describe("errors name the slug and the reason", () => {
  it("repository not found / ref not found", async () => {
    const cfg = config();
    const nf = await fetchError("gh:acme/missing#main", cfg);
    expect(nf).toMatchObject({ reason: "not-found" });
    expect(nf.message).toContain("gh:acme/missing#main");
    expect(nf.hint).toMatch(/GITHUB_TOKEN/);
    const rnf = await fetchError("gh:acme/hello#no-such-branch", cfg);
    expect(rnf).toMatchObject({ reason: "ref-not-found" });
    expect(rnf.message).toContain("no-such-branch");
    const sha = await fetchError(`gh:acme/hello#${"f".repeat(40)}`, cfg);
    expect(sha.reason).toBe("ref-not-found");
    expect(cacheEntries(cfg)).toEqual([]);
  });

  it("private repos: not found without a token, refused with a wrong one, fetched with the right one", async () => {
    expect((await fetchError("gh:acme/secret", config())).reason).toBe("not-found");
    const bad = await fetchError("gh:acme/secret", config({ GITHUB_TOKEN: "wrong" }));
    expect(bad.reason).toBe("auth");
    expect(bad.hint).toMatch(/GITHUB_TOKEN is set but was refused/);
    srv.reset();
    const ok = await fetchSource(parseSlug("gh:acme/secret"), {
      config: config({ GITHUB_TOKEN: TOKEN }),
    });
    expect(ok).toMatchObject({ commit: secret.commit, via: "tarball" });
  });

  it("private repo over the clone fallback uses the token (from the environment, not argv)", async () => {
    srv.inject = (r) => (r.path.includes("/tarball/") ? { status: 500 } : undefined);
    try {
      const ok = await fetchSource(parseSlug("gh:acme/secret"), {
        config: config({ GITHUB_TOKEN: TOKEN }),
      });
      expect(ok.via).toBe("clone");
    } finally {
      srv.inject = undefined;
    }
  });

  it("a server that hangs gives a timeout naming the slug", async () => {
    const cfg = config({ IAC_FETCH_TIMEOUT_S: "1" });
    srv.inject = () => "hang";
    try {
      const err = await fetchError("gh:acme/hello#main", cfg);
      expect(err.reason).toBe("timeout");
      expect(err.message).toMatch(/gh:acme\/hello#main: .*timed out after 1s/);
    } finally {
      srv.inject = undefined;
    }
    expect(cacheEntries(cfg)).toEqual([]);
  });

  it("injection-shaped refs that git accepts reach nothing but a not-found", async () => {
    const marker = path.join(tmp, "pwned");
    for (const ref of [`main;touch${marker}`, `$(touch${marker})`, "main|id", "`id`"]) {
      const cfg = config();
      expect((await fetchError(`gh:acme/hello#${ref}`, cfg)).reason).toBe("ref-not-found");
      srv.inject = (r) => (r.kind === "api" ? { status: 503 } : undefined);
      try {
        expect((await fetchError(`gh:acme/hello#${ref}`, cfg)).reason).toBe("ref-not-found");
        expect((await fetchError(`git+${srv.serverUrl}/acme/hello.git#${ref}`, cfg)).reason).toBe(
          "ref-not-found",
        );
      } finally {
        srv.inject = undefined;
      }
    }
    expect(existsSync(marker)).toBe(false);
    srv.reset();
    for (const raw of [
      "gh:acme/hello#--upload-pack=touch",
      "gh:acme/hello#-c",
      "gh:acme/--help",
      "gh:acme/hello//../../etc",
    ])
      expect(() => parseSlug(raw)).toThrow(/invalid slug/);
    expect(srv.count()).toBe(0);
  });
});

describe("hostile tarballs are refused and leave nothing behind", () => {
  const top = "evil-repo-abcdef1";
  const cases: [string, TarEntry[], string, RegExp][] = [
    [
      "path traversal",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/../../escaped.txt`, content: "x" },
      ],
      "unsafe-archive",
      /contains '\.\.'/,
    ],
    [
      "absolute path",
      [
        { path: `${top}/`, type: "5" },
        { path: "/tmp/iac-escaped-abs.txt", content: "x" },
      ],
      "unsafe-archive",
      /absolute path/,
    ],
    [
      "symlink escaping the tree",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/link`, type: "2", linkpath: "../../../etc" },
      ],
      "unsafe-archive",
      /points outside the tree/,
    ],
    [
      "absolute symlink",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/passwd`, type: "2", linkpath: "/etc/passwd" },
      ],
      "unsafe-archive",
      /absolute path '\/etc\/passwd'/,
    ],
    [
      "symlink chain that only escapes when resolved",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/c/`, type: "5" },
        { path: `${top}/c/b`, type: "2", linkpath: "." },
        { path: `${top}/a`, type: "2", linkpath: "c/b/../.." },
      ],
      "unsafe-archive",
      /symbolic link 'a' resolves outside the repository/,
    ],
    [
      "write through a symlink",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/d`, type: "2", linkpath: "sub" },
        { path: `${top}/sub/`, type: "5" },
        { path: `${top}/d/x.txt`, content: "through the link" },
      ],
      "unsafe-archive",
      /symbolic link|extraction failed/,
    ],
    [
      "hard link",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/h`, type: "1", linkpath: "/etc/passwd" },
      ],
      "unsafe-archive",
      /hard link/,
    ],
    [
      "character device",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/null`, type: "3" },
      ],
      "unsafe-archive",
      /device file/,
    ],
    [
      "block device",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/sda`, type: "4" },
      ],
      "unsafe-archive",
      /device file/,
    ],
    [
      "FIFO",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/pipe`, type: "6" },
      ],
      "unsafe-archive",
      /FIFO/,
    ],
    [
      "two top-level folders",
      [
        { path: `${top}/a.py`, content: "" },
        { path: "other/b.py", content: "" },
      ],
      "unsafe-archive",
      /more than one top-level folder/,
    ],
    [
      "oversized file",
      [
        { path: `${top}/`, type: "5" },
        { path: `${top}/big.bin`, content: Buffer.alloc(300_000) },
      ],
      "too-large",
      /more than 200000 bytes/,
    ],
    [
      "too many files",
      [
        { path: `${top}/`, type: "5" },
        ...Array.from({ length: 60 }, (_, i) => ({ path: `${top}/f${i}.py`, content: "" })),
      ],
      "too-large",
      /more than 50 entries/,
    ],
  ];

  it.each(cases)("%s", async (_name, entries, reason, problem) => {
    const cfg = config({ IAC_MAX_ARCHIVE_BYTES: "200000", IAC_MAX_ARCHIVE_FILES: "50" });
    srv.tarballOverride.set("evil/repo", buildTarGz(entries));
    try {
      const err = await fetchError("gh:evil/repo#main", cfg);
      expect(err.reason).toBe(reason);
      expect(err.message).toContain("gh:evil/repo#main");
      expect(err.message).toMatch(problem);
    } finally {
      srv.tarballOverride.delete("evil/repo");
    }
    expect(cacheEntries(cfg)).toEqual([]); // no temp dir, no half-written commit
    expect(existsSync(path.join(cfg.cacheDir, "escaped.txt"))).toBe(false);
    expect(existsSync(path.join(cfg.cacheDir, "sources", "escaped.txt"))).toBe(false);
    expect(existsSync("/tmp/iac-escaped-abs.txt")).toBe(false);
  });

  it("an archive bigger than the limit is cut off while downloading", async () => {
    const cfg = config({ IAC_MAX_ARCHIVE_BYTES: "1000" });
    const noisy = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 7919) % 251));
    srv.tarballOverride.set(
      "evil/repo",
      buildTarGz([{ path: `${top}/noise.bin`, content: noisy }]),
    );
    try {
      const err = await fetchError("gh:evil/repo#main", cfg);
      expect(err.reason).toBe("too-large");
    } finally {
      srv.tarballOverride.delete("evil/repo");
    }
    expect(cacheEntries(cfg)).toEqual([]);
  });
});

describe("file: slugs", () => {
  it("a plain folder is copied, keyed by content, and reused", async () => {
    const dir = path.join(tmp, "plain");
    await writeFixtureFiles(dir, {
      "app/__main__.py": "print(1)\n",
      "app/__pycache__/x.pyc": "junk",
      "node_modules/x": "junk",
    });
    const cfg = config();
    const { events, onEvent } = recorder();
    const a = await fetchSource(parseSlug(`file:${dir}`), { config: cfg, onEvent });
    expect(a.commit).toMatch(/^local-[0-9a-f]{40}$/);
    expect(a.via).toBe("local");
    expect(events.join("\n")).toMatch(/not in a git work tree; copying the folder/);
    expect(existsSync(path.join(a.dir, "app/__pycache__"))).toBe(false);
    expect(existsSync(path.join(a.dir, "node_modules"))).toBe(false);
    const b = await fetchSource(parseSlug(`file:${dir}`), { config: cfg });
    expect(b).toEqual({ ...a, via: "cache" });
    await writeFixtureFiles(dir, { "app/__main__.py": "print(2)\n" });
    const c = await fetchSource(parseSlug(`file:${dir}`), { config: cfg });
    expect(c.commit).not.toBe(a.commit);
  });

  it("a clean git work tree uses git archive at HEAD or #ref; a dirty one is copied as is", async () => {
    const repo = await createGitRepo({ "svc/main.py": "print('v1')\n", "other.txt": "" });
    const first = repo.commit;
    await repo.addCommit({ "svc/main.py": "print('v2')\n" });
    try {
      const cfg = config();
      const head = await fetchSource(parseSlug("file:svc", { baseDir: repo.dir }), { config: cfg });
      expect(head).toMatchObject({ commit: repo.commit, via: "local" });
      expect(head.dir).toBe(path.join(head.root, "svc"));
      expect(await readFile(path.join(head.dir, "main.py"), "utf8")).toContain("v2");
      const old = await fetchSource(
        parseSlug(`file:svc#${first.slice(0, 10)}`, { baseDir: repo.dir }),
        { config: cfg },
      );
      expect(old.commit).toBe(first);
      expect(await readFile(path.join(old.dir, "main.py"), "utf8")).toContain("v1");
      expect((await fetchError(`file:${repo.dir}#nope`, cfg)).reason).toBe("ref-not-found");
      await writeFixtureFiles(repo.dir, { "svc/main.py": "print('dirty')\n", "svc/new.py": "" });
      const { events, onEvent } = recorder();
      const dirty = await fetchSource(parseSlug(`file:${repo.dir}/svc`), { config: cfg, onEvent });
      expect(dirty.commit).toMatch(/^local-/);
      expect(await readFile(path.join(dirty.dir, "main.py"), "utf8")).toContain("dirty");
      expect(existsSync(path.join(dirty.dir, "new.py"))).toBe(true);
      expect(events.join("\n")).toMatch(/uncommitted changes under svc; copying the folder as is/);
      // an ignored folder inside a work tree is not in any commit: copied as is
      await writeFixtureFiles(repo.dir, {
        ".gitignore": "scratch/\n",
        "scratch/__main__.py": "print(1)\n",
      });
      const ignored = await fetchSource(parseSlug(`file:${repo.dir}/scratch`), { config: cfg });
      expect(ignored.commit).toMatch(/^local-/);
      expect(existsSync(path.join(ignored.dir, "__main__.py"))).toBe(true);
    } finally {
      await repo.cleanup();
    }
  });

  it("a missing folder or an escaping symlink is a clear error", async () => {
    const cfg = config();
    expect((await fetchError(`file:${tmp}/does-not-exist`, cfg)).reason).toBe("not-found");
    const plain = path.join(tmp, "plain-ref");
    await writeFixtureFiles(plain, { "main.py": "" });
    const noGit = await fetchError(`file:${plain}#main`, cfg);
    expect(noGit.reason).toBe("ref-not-found");
    expect(noGit.message).toMatch(/needs a git repository/);
    const dir = path.join(tmp, "linky");
    await writeFixtureFiles(dir, { "main.py": "", leak: { symlink: "/etc/passwd" } });
    const err = await fetchError(`file:${dir}`, cfg);
    expect(err.reason).toBe("unsafe-archive");
    expect(err.message).toMatch(/'leak' points outside the folder/);
  });
});
