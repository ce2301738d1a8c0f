// `iac inspect` end to end: the real CLI (node bin/iac.js) against the local GitHub server,
// one fixture repo per layout the detection rules know, plus one that matches nothing.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FixtureFiles, type FixtureRepo, createGitRepo } from "../helpers/git-fixtures.js";
import { type GitHubServer, startGitHubServer } from "../helpers/github-server.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const tmp = mkdtempSync(path.join(tmpdir(), "iac-inspect-cli-"));
let srv: GitHubServer;
const repos: FixtureRepo[] = [];

const MAIN_ONLY = "def main():\n    print('hi')\n";
const PROJECT = '[project]\nname = "demo"\nversion = "0"\n';
const layouts: Record<string, FixtureFiles> = {
  "root-dunder-main": { "__main__.py": "print(1)\n" },
  "root-main-script": { "main.py": MAIN_ONLY + "\nif __name__ == '__main__':\n    main()\n" },
  "root-main-function": { "main.py": MAIN_ONLY },
  "project-scripts": {
    "pyproject.toml": PROJECT + '[project.scripts]\nhello = "demo.cli:main"\n',
    "src/demo/__init__.py": "",
    "src/demo/cli.py": MAIN_ONLY,
  },
  "poetry-scripts": {
    "pyproject.toml": '[tool.poetry]\nname = "demo"\n[tool.poetry.scripts]\npoe = "demo:main"\n',
    "demo/__init__.py": MAIN_ONLY,
  },
  "setupcfg-scripts": {
    "setup.cfg": "[options.entry_points]\nconsole_scripts =\n    cfg = demo:main\n",
    "demo/__init__.py": MAIN_ONLY,
  },
  "package-main": { "app/__init__.py": "", "app/__main__.py": "print(1)\n" },
  "src-package-main": {
    "pyproject.toml": PROJECT,
    "src/demo/__init__.py": "",
    "src/demo/__main__.py": "print(1)\n",
  },
  "executable-main": { main: { content: "#!/bin/sh\necho hi\n", mode: 0o755 } },
  "pyproject-override": {
    "pyproject.toml": PROJECT + '[tool.iac]\nentrypoint = ["python", "serve.py"]\n',
    "serve.py": "",
    "main.py": MAIN_ONLY,
  },
  "repos-override": { "main.py": MAIN_ONLY },
  "nothing-here": { "README.md": "no code\n" },
};

const expected: Record<string, { kind?: string; argv?: string[]; rule?: string; error?: RegExp }> =
  {
    "root-dunder-main": {
      kind: "python-file",
      argv: ["python", "__main__.py"],
      rule: "root-__main__.py",
    },
    "root-main-script": { kind: "python-file", argv: ["python", "main.py"], rule: "root-main.py" },
    "root-main-function": {
      kind: "python-main-function",
      argv: ["python", "-c", "import sys, main; sys.exit(main.main())"],
      rule: "root-main.py-main-function",
    },
    "project-scripts": {
      kind: "console-script",
      argv: ["hello"],
      rule: "pyproject-project-scripts",
    },
    "poetry-scripts": { kind: "console-script", argv: ["poe"], rule: "pyproject-poetry-scripts" },
    "setupcfg-scripts": {
      kind: "console-script",
      argv: ["cfg"],
      rule: "setup.cfg-console-scripts",
    },
    "package-main": {
      kind: "python-module",
      argv: ["python", "-m", "app"],
      rule: "package-__main__",
    },
    "src-package-main": {
      kind: "python-module",
      argv: ["python", "-m", "demo"],
      rule: "src-package-__main__",
    },
    "executable-main": { kind: "executable", argv: ["./main"], rule: "root-executable-main" },
    "pyproject-override": {
      kind: "python-file",
      argv: ["python", "serve.py"],
      rule: "override-pyproject",
    },
    "repos-override": {
      kind: "python-module",
      argv: ["python", "-m", "http.server", "8000"],
      rule: "override-repos-file",
    },
    "nothing-here": {
      error:
        /no entrypoint found in the repository root; looked for:[\s\S]*__main__\.py[\s\S]*\[project\.scripts\][\s\S]*setup\.cfg[\s\S]*hint: set `entrypoint:`/,
    },
  };

function run(
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
  for (const [name, files] of Object.entries(layouts)) {
    const repo = await createGitRepo(files);
    repos.push(repo);
    await srv.addRepo(`acme/${name}`, repo.dir);
  }
  const lines = ["services:"];
  for (const name of Object.keys(layouts)) {
    lines.push(`  - slug: gh:acme/${name}#main`);
    if (name === "repos-override")
      lines.push("    entrypoint: python -m http.server 8000", "    port: 8000");
  }
  writeFileSync(path.join(tmp, "repos.yaml"), lines.join("\n") + "\n");
  writeFileSync(path.join(tmp, "broken.yaml"), "services:\n  - slug: gh:acme/x\n   name: y\n");
});

afterAll(async () => {
  await srv?.close();
  await Promise.all(repos.map((r) => r.cleanup()));
  await rm(tmp, { recursive: true, force: true });
});

describe("iac inspect", () => {
  it("--output json: right kind, argv and rule for every layout; the failure is reported, exit 1", async () => {
    const { code, stdout, stderr } = await run([
      "inspect",
      "--file",
      "repos.yaml",
      "--output",
      "json",
    ]);
    expect(code, stderr).toBe(1);
    const doc = JSON.parse(stdout) as { services: Array<Record<string, unknown>> };
    expect(doc.services.map((s) => s.name)).toEqual(Object.keys(layouts));
    for (const [i, svc] of doc.services.entries()) {
      const name = Object.keys(layouts)[i]!;
      const want = expected[name]!;
      expect(svc.slug).toBe(`gh:acme/${name}#main`);
      expect(svc.ref).toBe("main");
      expect(svc.commit).toBe(repos[i]!.commit);
      if (want.error) {
        expect(svc.entrypoint).toBeUndefined();
        expect(svc.error).toMatch(want.error);
      } else {
        expect(svc.error, `${name}: ${String(svc.error)}`).toBeUndefined();
        expect(svc.entrypoint).toEqual({ kind: want.kind, argv: want.argv, rule: want.rule });
        // `port:` from the repos file (the port the app serves its peers on) is shown when set.
        const port = name === "repos-override" ? ["port"] : [];
        expect(Object.keys(svc).sort()).toEqual(
          ["commit", "entrypoint", "name", ...port, "ref", "resources", "slug", "version"].sort(),
        );
        if (port.length) expect(svc.port).toBe(8000);
        // No version tag at `main`: the version handed to the build comes from the commit.
        expect(svc.version).toBe(`0.0.0+g${repos[i]!.commit.slice(0, 7)}`);
        // Default container limits (issue 11), shown so they can be reviewed before a deploy.
        expect(svc.resources).toEqual({ memory: "512m", cpus: 1, pids: 256 });
      }
    }
    expect(stderr).toMatch(/tarball: downloading acme\/root-main-function/);

    // second run: every commit is cached, only the ref resolutions hit the server
    srv.reset();
    const again = await run(["inspect", "--file", "repos.yaml", "--output", "json"]);
    expect(JSON.parse(again.stdout)).toEqual(doc);
    expect(
      srv.count({ kind: "codeload" }) + srv.count({ kind: "git" }) + srv.count({ path: /tarball/ }),
    ).toBe(0);
  });

  it("human table for the bundled offline demo (examples/demo.yaml), exit 0", async () => {
    const { code, stdout, stderr } = await run([
      "inspect",
      "--file",
      path.join(ROOT, "examples/demo.yaml"),
    ]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^SERVICE\s+SLUG\s+PORT\s+COMMIT\s+KIND\s+ARGV\s+LIMITS\s+RULE/);
    // In a pipe the table fits 80 columns: long cells are cut with "…" (never the service
    // name); the full values are in -o json (the test above).
    for (const line of stdout.trimEnd().split("\n")) expect(line.length).toBeLessThanOrEqual(80);
    expect(stdout).toMatch(/^hello-main\s+file:he…\s+-\s+[0-9a-f]{7}\s+python-…\s+python …\s/m);
    expect(stdout).toMatch(/^greeter-cli\s+file:gr…\s+-\s+[0-9a-f]{7}\s+console…\s+greeter\s/m);
  });

  it("a malformed repos file is a usage error (exit 2) naming the file and line", async () => {
    const { code, stdout, stderr } = await run([
      "inspect",
      "--file",
      "broken.yaml",
      "--output",
      "json",
    ]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/iac: error: broken\.yaml:3:\d+: invalid YAML/);
  });
});
