import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/kernel/config.js";
import { DEFAULT_REPOS_FILES, reposFile } from "../../src/cli/shared.js";
import { migrateLegacyState, migrationMessage } from "../../src/stack/state-dir.js";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "iac-statedir-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("state directory", () => {
  it("defaults to $XDG_STATE_HOME/iac-wrapper, independent of the working directory", () => {
    const a = loadConfig({ XDG_STATE_HOME: "/x/state" }, {}, "/work/a");
    const b = loadConfig({ XDG_STATE_HOME: "/x/state" }, {}, "/elsewhere");
    expect(a.stateDir).toBe("/x/state/iac-wrapper");
    expect(b.stateDir).toBe(a.stateDir);
    expect(loadConfig({ IAC_STATE_DIR: "/s" }, {}, "/w").stateDir).toBe("/s");
    expect(a.legacyStateDir).toBe("/work/a/.iac");
  });

  it("moves a legacy ./.iac into the state dir once, rewriting paths in tfvars", () => {
    const root = tmp();
    const legacy = path.join(root, "checkout", ".iac");
    const stateDir = path.join(root, "state");
    mkdirSync(path.join(legacy, "demo", "envoy"), { recursive: true });
    const envoy = path.join(legacy, "demo", "envoy", "api.yaml");
    writeFileSync(envoy, "static_resources: {}\n");
    writeFileSync(
      path.join(legacy, "demo", "terraform.tfvars.json"),
      JSON.stringify({ services: { api: { envoy_config: envoy } } }),
    );
    writeFileSync(path.join(legacy, "demo", "terraform.tfstate"), "{}");

    const moved = migrateLegacyState({ stateDir, legacyStateDir: legacy });
    expect(moved).toEqual([
      { project: "demo", from: path.join(legacy, "demo"), to: path.join(stateDir, "demo") },
    ]);
    expect(migrationMessage(moved[0]!)).toMatch(/moved project 'demo' from .*\.iac\/demo to /);
    expect(existsSync(legacy)).toBe(false);
    expect(existsSync(path.join(stateDir, "demo", "terraform.tfstate"))).toBe(true);
    const vars = JSON.parse(
      readFileSync(path.join(stateDir, "demo", "terraform.tfvars.json"), "utf8"),
    ) as { services: { api: { envoy_config: string } } };
    expect(vars.services.api.envoy_config).toBe(path.join(stateDir, "demo", "envoy", "api.yaml"));
    // Once: a second run finds nothing to do.
    expect(migrateLegacyState({ stateDir, legacyStateDir: legacy })).toEqual([]);
  });

  it("never overwrites a project that already has state, and says so", () => {
    const root = tmp();
    const legacy = path.join(root, ".iac");
    const stateDir = path.join(root, "state");
    mkdirSync(path.join(legacy, "demo"), { recursive: true });
    mkdirSync(path.join(stateDir, "demo"), { recursive: true });
    writeFileSync(path.join(legacy, "demo", "terraform.tfstate"), "old");
    writeFileSync(path.join(stateDir, "demo", "terraform.tfstate"), "new");
    const [m] = migrateLegacyState({ stateDir, legacyStateDir: legacy });
    expect(m?.skipped).toMatch(/already exists/);
    expect(migrationMessage(m!)).toMatch(/left .* in place/);
    expect(readFileSync(path.join(stateDir, "demo", "terraform.tfstate"), "utf8")).toBe("new");
    expect(readFileSync(path.join(legacy, "demo", "terraform.tfstate"), "utf8")).toBe("old");
  });

  it("does nothing when the state dir is ./.iac itself", () => {
    const root = tmp();
    const legacy = path.join(root, ".iac");
    mkdirSync(path.join(legacy, "demo"), { recursive: true });
    expect(migrateLegacyState({ stateDir: legacy, legacyStateDir: legacy })).toEqual([]);
    expect(existsSync(path.join(legacy, "demo"))).toBe(true);
  });
});

describe("default repos file", () => {
  const cmd = { name: () => "plan" };
  it.each(DEFAULT_REPOS_FILES.map((f, i) => [f, DEFAULT_REPOS_FILES.slice(i)] as const))(
    "finds %s first among what exists and says which",
    (expected, present) => {
      const dir = tmp();
      for (const f of present) writeFileSync(path.join(dir, f), "[]");
      const said: string[] = [];
      expect(reposFile(undefined, cmd, dir, (l) => said.push(l))).toBe(path.join(dir, expected));
      expect(said).toEqual([`reading ${expected} (no --file given)`]);
    },
  );

  it("--file wins and is not announced", () => {
    const dir = tmp();
    writeFileSync(path.join(dir, "repos.yaml"), "[]");
    const said: string[] = [];
    expect(reposFile("other.yaml", cmd, dir, (l) => said.push(l))).toBe("other.yaml");
    expect(said).toEqual([]);
  });

  it("names the files it looked for when none exists (usage error)", () => {
    const dir = tmp();
    expect(() => reposFile(undefined, cmd, dir, () => {})).toThrowError(
      /plan: no --file given and none of repos\.yaml, repos\.yml, repos\.json in /,
    );
  });
});
