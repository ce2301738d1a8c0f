// The compiled CLI (issue 14 item 7): bin/iac.js runs dist/, and a dist/ that does not match
// src/ is never run silently. Each case works on a copy of the checkout's bin/, scripts/build.mjs
// and src/ in a temp folder, so the real dist/ is never touched.
import { spawnSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
let base: string;

/** A copy of what `iac` needs to start: bin/, scripts/build.mjs, src/, package.json. */
function checkout(name: string, nodeModules: "linked" | "empty"): string {
  const dir = path.join(base, name);
  mkdirSync(path.join(dir, "scripts"), { recursive: true });
  cpSync(path.join(ROOT, "bin"), path.join(dir, "bin"), { recursive: true });
  cpSync(path.join(ROOT, "src"), path.join(dir, "src"), { recursive: true });
  cpSync(path.join(ROOT, "scripts/build.mjs"), path.join(dir, "scripts/build.mjs"));
  cpSync(path.join(ROOT, "package.json"), path.join(dir, "package.json"));
  if (nodeModules === "linked")
    symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  else mkdirSync(path.join(dir, "node_modules"));
  return dir;
}

function run(dir: string, args: string[]) {
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function setVersion(dir: string, version: string): void {
  const file = path.join(dir, "src/cli/main.ts");
  const text = readFileSync(file, "utf8");
  expect(text).toMatch(/\.version\("[^"]+"/);
  writeFileSync(file, text.replace(/\.version\("[^"]+"/, `.version("${version}"`));
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), "iac-build-"));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe("compiled CLI (dist/)", () => {
  it("builds dist/ with a manifest, and a fresh build runs without a word on stderr", () => {
    const dir = checkout("fresh", "linked");
    const b = run(dir, ["scripts/build.mjs"]);
    expect(b.code, b.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(dir, "dist/.build.json"), "utf8"));
    expect(manifest.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(manifest.files)).toContain("cli/main.ts");
    const r = run(dir, ["bin/iac.js", "--version"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(run(dir, ["scripts/build.mjs", "--if-stale"]).stderr).toContain("up to date");
  });

  it("a source touched but unchanged (a checkout) is still fresh: no rebuild", () => {
    const dir = checkout("touched", "linked");
    expect(run(dir, ["scripts/build.mjs"]).code).toBe(0);
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(dir, "src/kernel/errors.ts"), later, later);
    const r = run(dir, ["bin/iac.js", "--version"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    // The manifest now records the new mtime, so the next start takes the fast path again.
    const manifest = JSON.parse(readFileSync(path.join(dir, "dist/.build.json"), "utf8"));
    const { mtimeMs } = statSync(path.join(dir, "src/kernel/errors.ts"));
    expect(manifest.files["kernel/errors.ts"][1]).toBe(mtimeMs);
    expect(Math.abs(mtimeMs - later.getTime())).toBeLessThan(1);
  });

  it("a changed source is rebuilt before it runs, and iac says which file and that it rebuilt", () => {
    const dir = checkout("changed", "linked");
    expect(run(dir, ["scripts/build.mjs"]).code).toBe(0);
    setVersion(dir, "9.8.7");
    const r = run(dir, ["bin/iac.js", "--version"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("9.8.7");
    expect(r.stderr).toMatch(
      /dist\/ is older than src\/ \(changed: src\/cli\/main\.ts\): rebuilt dist\//,
    );
    // Rebuilt once: the next start is silent.
    expect(run(dir, ["bin/iac.js", "--version"])).toMatchObject({ code: 0, stderr: "" });
  });

  it("a stale build that cannot be rebuilt is refused (exit 2, what to run), never run", () => {
    const dir = checkout("refused", "linked");
    expect(run(dir, ["scripts/build.mjs"]).code).toBe(0);
    // Now take esbuild away: the checkout has node_modules without it.
    unlinkSync(path.join(dir, "node_modules"));
    mkdirSync(path.join(dir, "node_modules"));
    setVersion(dir, "9.9.9");
    const r = run(dir, ["bin/iac.js", "--version"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("dist/ is older than src/ (changed: src/cli/main.ts)");
    expect(r.stderr).toContain("esbuild is not installed");
    expect(r.stderr).toContain("run `npm run build`");
  });

  it("no build at all: built on first start when possible, refused when not", () => {
    const ok = checkout("nobuild", "linked");
    const r = run(ok, ["bin/iac.js", "--version"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("dist/ has no build");
    const bare = checkout("nobuild-bare", "empty");
    const refused = run(bare, ["bin/iac.js", "--version"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("dist/ has no build");
  });
});
