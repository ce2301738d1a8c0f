// Issue 18, "true errors": faults of the machine reported as what they are, naming the path and
// the fix, and commands that only read never write. Real file systems: a small tmpfs (full disk),
// a read-only bind mount or tmpfs (EROFS), a root-owned folder seen by uid 65534 (EACCES: root
// would pass every permission check). Needs root to mount; no Docker (every case fails before it).
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitRepo, type FixtureRepo } from "../helpers/git-fixtures.js";
import { startGitHubServer, type GitHubServer } from "../helpers/github-server.js";
import { ROOT } from "./harness.js";

const IAC = path.join(ROOT, "bin/iac.js");
const mounts: string[] = [];
const temps: string[] = [];
let gh: GitHubServer;
const repos: FixtureRepo[] = [];

function temp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "iac-syserr-"));
  chmodSync(d, 0o755);
  temps.push(d);
  return d;
}

/** A tmpfs of `size` at a new folder (size "1m"); remounted read-only with `ro`. */
function tmpfs(size: string, opts: { ro?: boolean } = {}): string {
  const dir = temp();
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir]);
  mounts.push(dir);
  if (opts.ro) execFileSync("mount", ["-o", "remount,ro", dir]);
  return dir;
}

/** `dir` itself, read-only from now on (a read-only bind mount over it). */
function makeReadOnly(dir: string): void {
  execFileSync("mount", ["--bind", dir, dir]);
  mounts.push(dir);
  execFileSync("mount", ["-o", "remount,bind,ro", dir]);
}

/** Every file and folder under `dir` (relative), to prove nothing was written. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e);
      out.push(path.relative(dir, p));
      walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function iac(
  args: string[],
  env: Record<string, string>,
  opts: { cwd: string; uid?: number },
): Promise<Result> {
  const base: NodeJS.ProcessEnv = {
    ...process.env,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
    GITHUB_TOKEN: "",
    IAC_SIDECAR: "none",
    ...env,
  };
  const [cmd, argv] =
    opts.uid === undefined
      ? [process.execPath, [IAC, ...args]]
      : [
          "setpriv",
          [
            `--reuid=${opts.uid}`,
            `--regid=${opts.uid}`,
            "--clear-groups",
            process.execPath,
            IAC,
            ...args,
          ],
        ];
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: opts.cwd, env: base, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A work folder with a repos file naming gh:acme/<repo>; state and secrets of its own. */
function workDir(repo: string): { cwd: string; env: Record<string, string> } {
  const cwd = temp();
  writeFileSync(path.join(cwd, "repos.yaml"), `services:\n  - slug: gh:acme/${repo}\n`);
  return {
    cwd,
    env: {
      IAC_STATE_DIR: path.join(cwd, "state"),
      IAC_SECRETS_DIR: path.join(cwd, "secrets"),
      IAC_PROJECT: `se${randomBytes(3).toString("hex")}`,
    },
  };
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "test/faults/syserrors.test.ts needs root: it mounts tmpfs and read-only bind mounts to make real EROFS/ENOSPC",
    );
  }
  gh = await startGitHubServer();
  const small = await createGitRepo({ "main.py": "def main():\n    return 0\n" });
  // 8 MiB that compress to a few KiB: the tarball is tiny, its extraction is not.
  const big = await createGitRepo({
    "main.py": "def main():\n    return 0\n",
    "data.bin": { content: Buffer.alloc(8 * 1024 * 1024) },
  });
  repos.push(small, big);
  await gh.addRepo("acme/small", small.dir);
  await gh.addRepo("acme/big", big.dir);
}, 60_000);

afterAll(async () => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync("umount", [m]);
    } catch {
      execFileSync("umount", ["-l", m]);
    }
  }
  for (const d of temps) rmSync(d, { recursive: true, force: true });
  await gh?.close();
  for (const r of repos) await r.cleanup();
});

describe("fault: the machine's faults named as what they are", () => {
  it("a read-only cache: EROFS naming the cache path and IAC_CACHE_DIR (not ENOENT mkdir)", async () => {
    const w = workDir("small");
    const cache = tmpfs("1m", { ro: true });
    const res = await iac(["inspect"], { ...w.env, IAC_CACHE_DIR: cache }, { cwd: w.cwd });
    const out = res.stdout + res.stderr;
    expect(res.code, out).toBe(1);
    expect(out).toMatch(new RegExp(`cannot write ${cache}[^ ]*: read-only file system`));
    expect(out).toMatch(/IAC_CACHE_DIR/);
    expect(out).not.toMatch(/ENOENT/);
  });

  it("a full disk during extraction: ENOSPC naming the path, not the repository's content", async () => {
    const w = workDir("big");
    const cache = tmpfs("1m");
    const res = await iac(["inspect"], { ...w.env, IAC_CACHE_DIR: cache }, { cwd: w.cwd });
    const out = res.stdout + res.stderr;
    expect(res.code, out).toBe(1);
    expect(out).toMatch(new RegExp(`no space left on the device holding ${cache}`));
    expect(out).not.toMatch(/cannot be extracted safely/);
    expect(tree(cache).filter((f) => !f.startsWith("tmp"))).not.toContain("data.bin");
  });

  it("a cache folder the user may not write: EACCES naming the path and the fix", async () => {
    const w = workDir("small");
    const cache = path.join(temp(), "cache");
    mkdirSync(cache, { mode: 0o755 }); // root's; uid 65534 may read, not write
    for (const d of [w.cwd]) chownSync(d, 65534, 65534);
    const res = await iac(
      ["inspect"],
      { ...w.env, IAC_CACHE_DIR: cache, HOME: w.cwd, XDG_RUNTIME_DIR: w.cwd },
      { cwd: w.cwd, uid: 65534 },
    );
    const out = res.stdout + res.stderr;
    expect(res.code, out).toBe(1);
    expect(out).toMatch(new RegExp(`permission denied: [a-z]+ ${cache}`));
    expect(out).toMatch(/ls -ld/);
  });
});

describe("fault: commands that only read never write", () => {
  it("iac health with a read-only secrets/ uses the control-plane cert that is there", async () => {
    const w = workDir("small");
    const init = await iac(["pki", "init"], w.env, { cwd: w.cwd });
    expect(init.code, init.stderr).toBe(0);
    // A deployed project (its tfvars) whose container is gone: health answers UNREACHABLE.
    const dir = path.join(w.env.IAC_STATE_DIR!, w.env.IAC_PROJECT!);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, "terraform.tfvars.json"),
      JSON.stringify({
        project: w.env.IAC_PROJECT,
        network_name: "iacnet",
        services: { app: { host_port: 1 } },
      }),
    );
    makeReadOnly(w.env.IAC_SECRETS_DIR!);
    const res = await iac(["health", "--output", "json"], w.env, { cwd: w.cwd });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).not.toMatch(/read-only|EROFS/);
    expect(JSON.parse(res.stdout)).toMatchObject({
      services: [{ name: "app", status: "UNREACHABLE" }],
    });
  });

  it("status, history, health and logs write nothing (no CA, cert, state or cache appears)", async () => {
    const root = temp();
    const env = {
      IAC_STATE_DIR: path.join(root, "state"),
      IAC_SECRETS_DIR: path.join(root, "secrets"),
      IAC_CACHE_DIR: path.join(root, "cache"),
      IAC_PROJECT: `se${randomBytes(3).toString("hex")}`,
    };
    // A project deployed from elsewhere (its tfvars here), no secrets on this machine yet.
    const dir = path.join(env.IAC_STATE_DIR, env.IAC_PROJECT);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, "terraform.tfvars.json"),
      JSON.stringify({
        project: env.IAC_PROJECT,
        network_name: "iacnet",
        services: { app: { host_port: 1 } },
      }),
    );
    const before = tree(root);
    const results: Record<string, Result> = {};
    for (const cmd of [["status"], ["history"], ["health"], ["logs", "app"]]) {
      results[cmd[0]!] = await iac(cmd, env, { cwd: root });
    }
    expect(tree(root), JSON.stringify(results, null, 1)).toEqual(before);
    expect(results.status!.code, results.status!.stderr).toBe(0);
    expect(results.history!.code, results.history!.stderr).toBe(0);
    // No CA to authenticate with: said so, with the fix; nothing created.
    for (const r of [results.health!, results.logs!]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/no control-plane certificate/);
      expect(r.stderr).toMatch(/iac pki init/);
    }
  });
});
