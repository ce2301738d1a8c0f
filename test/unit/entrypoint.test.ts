import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  EntrypointError,
  analyzeMainPy,
  detectEntrypoint,
  parseIni,
} from "../../src/detect/entrypoint.js";
import type { Entrypoint, Source } from "../../src/kernel/types.js";
import { type FixtureFiles, writeFixtureFiles } from "../helpers/git-fixtures.js";

const tmp = mkdtempSync(path.join(tmpdir(), "iac-entry-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
let n = 0;

async function source(files: FixtureFiles, subdir?: string): Promise<Source> {
  const root = path.join(tmp, String(n++));
  await writeFixtureFiles(root, { ".keep": "", ...files });
  return {
    root,
    dir: subdir ? path.join(root, subdir) : root,
    commit: "0".repeat(40),
    via: "local",
  };
}

const RUN = "import sys, main; sys.exit(main.main())";
const PROJECT = (extra: string) => `[project]\nname = "demo"\nversion = "0.1.0"\n${extra}`;
const MAIN_CALLED = "def main():\n    print('hi')\n\nif __name__ == '__main__':\n    main()\n";
const MAIN_ONLY = "def main():\n    print('hi')\n";

type Case = [string, FixtureFiles, Partial<Entrypoint>, string[]?];

// Every rule, each precedence pair, each override.
const cases: Case[] = [
  // rule 1: root files
  [
    "root __main__.py",
    { "__main__.py": "print(1)\n" },
    { kind: "python-file", argv: ["python", "__main__.py"], rule: "root-__main__.py" },
  ],
  [
    "main.py calling main() under the guard",
    { "main.py": MAIN_CALLED },
    {
      kind: "python-file",
      argv: ["python", "main.py"],
      rule: "root-main.py",
      installProject: false,
    },
  ],
  [
    "main.py script without main()",
    { "main.py": "print('hello')\n" },
    { kind: "python-file", rule: "root-main.py" },
  ],
  [
    "main.py defining main() never called",
    { "main.py": MAIN_ONLY },
    {
      kind: "python-main-function",
      argv: ["python", "-c", RUN],
      rule: "root-main.py-main-function",
      installProject: false,
    },
  ],
  [
    "main.py: async main() never called",
    { "main.py": "import asyncio\n\nasync def main():\n    await asyncio.sleep(0)\n" },
    {
      kind: "python-main-function",
      argv: ["python", "-c", "import asyncio, sys, main; sys.exit(asyncio.run(main.main()))"],
    },
  ],
  [
    "main.py: guard calls something else",
    { "main.py": MAIN_ONLY + "\ndef run():\n    pass\n\nif __name__ == '__main__':\n    run()\n" },
    { kind: "python-main-function" },
  ],
  [
    "main.py: one-line guard",
    { "main.py": MAIN_ONLY + 'if __name__ == "__main__": main()\n' },
    { kind: "python-file", rule: "root-main.py" },
  ],
  [
    "main.py: reversed guard with sys.exit(main())",
    {
      "main.py": "import sys\n" + MAIN_ONLY + "if '__main__' == __name__:\n    sys.exit(main())\n",
    },
    { kind: "python-file" },
  ],
  [
    "main.py: unguarded top-level main() call",
    { "main.py": MAIN_ONLY + "main()\n" },
    { kind: "python-file" },
  ],
  [
    "main.py: guard only in a comment",
    { "main.py": MAIN_ONLY + "# if __name__ == '__main__':\n#     main()\n" },
    { kind: "python-main-function" },
  ],
  [
    "main.py: call only in a docstring",
    { "main.py": MAIN_ONLY + '"""\nUsage:\nmain()\n"""\n' },
    { kind: "python-main-function" },
  ],
  [
    "main.py: def main( only in a docstring",
    { "main.py": '"""\ndef main():\n"""\nprint(1)\n' },
    { kind: "python-file" },
  ],
  [
    "main.py: nested def main is not top-level",
    { "main.py": "class A:\n    def main(self):\n        pass\n" },
    { kind: "python-file" },
  ],
  // rule 2: console scripts
  [
    "[project.scripts]: first in file order (not alphabetical)",
    {
      "pyproject.toml": PROJECT(
        '[project.scripts]\nzeta = "demo.cli:main"\nalpha = "demo:other"\n',
      ),
      "demo/__init__.py": "",
      "demo/cli.py": "",
    },
    {
      kind: "console-script",
      argv: ["zeta"],
      rule: "pyproject-project-scripts",
      installProject: true,
    },
  ],
  [
    "[project.scripts]: src layout, dotted attr, extras",
    {
      "pyproject.toml": PROJECT('[project.scripts]\ngo = "demo.cli:app.run [extra]"\n'),
      "src/demo/__init__.py": "",
      "src/demo/cli.py": "",
    },
    { argv: ["go"], rule: "pyproject-project-scripts" },
  ],
  [
    "[project.scripts]: single-module layout",
    { "pyproject.toml": PROJECT('[project.scripts]\ngo = "tool:main"\n'), "tool.py": "" },
    { argv: ["go"] },
  ],
  [
    "[project.scripts]: package-dir from [tool.setuptools]",
    {
      "pyproject.toml": PROJECT(
        '[project.scripts]\ngo = "demo:main"\n[tool.setuptools.package-dir]\n"" = "lib"\n',
      ),
      "lib/demo/__init__.py": "",
    },
    { argv: ["go"] },
  ],
  [
    "[tool.poetry.scripts]: string form",
    {
      "pyproject.toml":
        '[tool.poetry]\nname = "demo"\n[tool.poetry.scripts]\nserve = "demo.cli:main"\n',
      "demo/cli.py": "",
    },
    {
      kind: "console-script",
      argv: ["serve"],
      rule: "pyproject-poetry-scripts",
      installProject: true,
    },
  ],
  [
    "[tool.poetry.scripts]: table form",
    {
      "pyproject.toml": '[tool.poetry.scripts]\nserve = { callable = "demo:main" }\n',
      "demo/__init__.py": "",
    },
    { argv: ["serve"], rule: "pyproject-poetry-scripts" },
  ],
  [
    "setup.cfg console_scripts: first line",
    {
      "setup.cfg":
        "[metadata]\nname = demo\n\n[options.entry_points]\n# comment\nconsole_scripts =\n    first = demo.cli:main\n    second = demo:other\n",
      "demo/cli.py": "",
    },
    {
      kind: "console-script",
      argv: ["first"],
      rule: "setup.cfg-console-scripts",
      installProject: true,
    },
  ],
  [
    "setup.cfg console_scripts on the key line",
    {
      "setup.cfg": "[options.entry_points]\nconsole_scripts = one = demo:main\n",
      "demo/__init__.py": "",
    },
    { argv: ["one"] },
  ],
  // rule 3: packages
  [
    "{pkg}/__main__.py",
    { "app/__init__.py": "", "app/__main__.py": "print(1)\n" },
    {
      kind: "python-module",
      argv: ["python", "-m", "app"],
      rule: "package-__main__",
      installProject: false,
    },
  ],
  [
    "src/{pkg}/__main__.py",
    { "pyproject.toml": PROJECT(""), "src/app/__main__.py": "" },
    {
      kind: "python-module",
      argv: ["python", "-m", "app"],
      rule: "src-package-__main__",
      installProject: true,
    },
  ],
  [
    "several packages: sorted, not listing order",
    { "zz/__main__.py": "", "aa/__main__.py": "", "mm/__main__.py": "" },
    { argv: ["python", "-m", "aa"] },
  ],
  [
    "several packages: the project's own name wins",
    { "pyproject.toml": PROJECT(""), "aa/__main__.py": "", "demo/__main__.py": "" },
    { argv: ["python", "-m", "demo"] },
  ],
  [
    "non-identifier folders are not packages",
    { "my-app/__main__.py": "", ".hidden/__main__.py": "", "ok/__main__.py": "" },
    { argv: ["python", "-m", "ok"] },
  ],
  // rule 4: executable
  [
    "executable main",
    { main: { content: "#!/bin/sh\necho hi\n", mode: 0o755 } },
    { kind: "executable", argv: ["./main"], rule: "root-executable-main", installProject: false },
  ],
  // precedence pairs (higher rule first in the files, winner expected)
  [
    "precedence: __main__.py over main.py",
    { "__main__.py": "", "main.py": MAIN_ONLY },
    { rule: "root-__main__.py" },
  ],
  [
    "precedence: main.py over [project.scripts]",
    {
      "main.py": MAIN_CALLED,
      "pyproject.toml": PROJECT('[project.scripts]\ngo = "demo:main"\n'),
      "demo/__init__.py": "",
    },
    { rule: "root-main.py" },
  ],
  [
    "precedence: [project.scripts] over [tool.poetry.scripts]",
    {
      "pyproject.toml": PROJECT(
        '[project.scripts]\na = "demo:main"\n[tool.poetry.scripts]\nb = "demo:main"\n',
      ),
      "demo/__init__.py": "",
    },
    { argv: ["a"], rule: "pyproject-project-scripts" },
  ],
  [
    "precedence: [tool.poetry.scripts] over setup.cfg",
    {
      "pyproject.toml": '[tool.poetry.scripts]\nb = "demo:main"\n',
      "setup.cfg": "[options.entry_points]\nconsole_scripts =\n    c = demo:main\n",
      "demo/__init__.py": "",
    },
    { argv: ["b"], rule: "pyproject-poetry-scripts" },
  ],
  [
    "precedence: setup.cfg over {pkg}/__main__.py",
    {
      "setup.cfg": "[options.entry_points]\nconsole_scripts =\n    c = demo:main\n",
      "demo/__init__.py": "",
      "demo/__main__.py": "",
    },
    { rule: "setup.cfg-console-scripts" },
  ],
  [
    "precedence: {pkg}/__main__.py over src/{pkg}/__main__.py",
    { "aaa/__main__.py": "", "src/aaa/__main__.py": "", "src/b/__main__.py": "" },
    { rule: "package-__main__" },
  ],
  [
    "precedence: {pkg}/__main__.py over executable main",
    { "app/__main__.py": "", main: { content: "#!/bin/sh\n", mode: 0o755 } },
    { rule: "package-__main__" },
  ],
  // overrides
  [
    "override-pyproject over main.py",
    {
      "main.py": MAIN_ONLY,
      "serve.py": "",
      "pyproject.toml": PROJECT('[tool.iac]\nentrypoint = "python serve.py"\n'),
    },
    { kind: "python-file", argv: ["python", "serve.py"], rule: "override-pyproject" },
  ],
  [
    "override-pyproject list form -> python -m",
    {
      "pyproject.toml": PROJECT('[tool.iac]\nentrypoint = ["python", "-m", "demo.server"]\n'),
      "demo/server.py": "",
    },
    { kind: "python-module", argv: ["python", "-m", "demo.server"], installProject: true },
  ],
  [
    "override-repos-file over everything",
    {
      "main.py": MAIN_ONLY,
      "pyproject.toml": PROJECT('[tool.iac]\nentrypoint = "python other.py"\n'),
    },
    { kind: "python-module", argv: ["python", "-m", "http.server"], rule: "override-repos-file" },
    ["python", "-m", "http.server"],
  ],
  [
    "override-repos-file: executable",
    { "bin/start": { content: "#!/bin/sh\n", mode: 0o755 } },
    { kind: "executable", argv: ["./bin/start", "--fast"], rule: "override-repos-file" },
    ["./bin/start", "--fast"],
  ],
  [
    "override-repos-file: console script of an installable project",
    { "pyproject.toml": PROJECT("") },
    { kind: "console-script", argv: ["gunicorn", "app:app"], installProject: true },
    ["gunicorn", "app:app"],
  ],
];

describe("detectEntrypoint: rules, precedence and overrides", () => {
  it.each(cases)("%s", async (_name, files, expected, override) => {
    const ep = await detectEntrypoint(await source(files), override);
    expect(ep).toMatchObject(expected);
  });

  it("runs in the subdirectory of a monorepo", async () => {
    const src = await source(
      { "main.py": MAIN_CALLED, "services/api/__main__.py": "" },
      "services/api",
    );
    expect(await detectEntrypoint(src)).toMatchObject({ rule: "root-__main__.py" });
  });
});

async function detectError(files: FixtureFiles, override?: string[]): Promise<EntrypointError> {
  try {
    await detectEntrypoint(await source(files), override);
  } catch (err) {
    expect(err).toBeInstanceOf(EntrypointError);
    return err as EntrypointError;
  }
  throw new Error("expected an EntrypointError");
}

describe("detectEntrypoint: errors", () => {
  it("nothing found: lists every candidate considered and how to override", async () => {
    const err = await detectError({ "README.md": "# hi\n", main: "not executable\n" });
    for (const c of [
      "pyproject.toml",
      "__main__.py at the root",
      "main.py at the root",
      "[project.scripts]",
      "setup.cfg",
      "{package}/__main__.py",
      "'main' at the root: present but not executable",
    ])
      expect(err.message).toContain(c);
    expect(err.candidates.length).toBeGreaterThanOrEqual(6);
    expect(err.hint).toMatch(/entrypoint/);
    expect(err.hint).toMatch(/\[tool\.iac\]/);
  });

  it.each<[string, FixtureFiles, RegExp, string[]?]>([
    [
      "console script without module:attr",
      { "pyproject.toml": PROJECT('[project.scripts]\ngo = "demo"\n'), "demo/__init__.py": "" },
      /script 'go' = "demo" is not of the form module:attr/,
    ],
    [
      "console script module missing from the layout",
      { "pyproject.toml": PROJECT('[project.scripts]\ngo = "nope.cli:main"\n') },
      /refers to module 'nope.cli'.*looked for nope\/cli\.py.*src\/nope\/cli\.py/,
    ],
    [
      "console script with a hostile name",
      {
        "pyproject.toml": PROJECT('[project.scripts]\n"-rf" = "demo:main"\n'),
        "demo/__init__.py": "",
      },
      /script name '-rf' is not a valid command name/,
    ],
    [
      "poetry file script",
      { "pyproject.toml": '[tool.poetry.scripts]\nx = { reference = "bin/x", type = "file" }\n' },
      /file script/,
    ],
    [
      "setup.cfg line without '='",
      { "setup.cfg": "[options.entry_points]\nconsole_scripts =\n    demo:main\n" },
      /not of the form name = module:attr/,
    ],
    [
      "invalid pyproject.toml",
      { "pyproject.toml": "[project\nname = 1\n", "main.py": "" },
      /pyproject\.toml:\d+:\d+: invalid TOML/,
    ],
    [
      "[tool.iac] entrypoint of the wrong type",
      { "pyproject.toml": "[tool.iac]\nentrypoint = 42\n" },
      /\[tool\.iac\]: entrypoint must be/,
    ],
    [
      "override naming a missing file",
      {},
      /runs missing\.py, which does not exist/,
      ["python", "missing.py"],
    ],
    ["override naming a missing executable", {}, /runs \.\/run, which does not exist/, ["./run"]],
  ])("%s", async (_name, files, problem, override) => {
    const err = await detectError(files, override);
    expect(err.message).toMatch(problem);
  });
});

describe("static helpers", () => {
  it("analyzeMainPy handles strings that contain quotes and raw strings", () => {
    const src = 'x = "it\'s"\ny = r"\\"\ndef main():\n    return 0\nprint("main()")\n';
    expect(analyzeMainPy(src)).toMatchObject({ definesMain: true, callsMain: false });
  });

  it("parseIni: sections, continuation lines, comments, key case", () => {
    const ini = parseIni("[a]\nKey = v1\n  more\n; c\n[b]\nx: 1\n# y = 2\n");
    expect(ini.get("a")?.get("key")).toBe("v1\nmore");
    expect(ini.get("b")?.get("x")).toBe("1");
    expect(ini.get("b")?.has("y")).toBe(false);
  });
});
