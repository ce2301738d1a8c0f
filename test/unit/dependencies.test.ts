// Every common way a Python project declares what it needs, read statically into the wheelhouse
// requirements (image/wheelhouse.ts over detect/project.ts), and the setup.py reader's ast logic.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import { poetryConstraint, readProject } from "../../src/detect/project.js";
import { SETUP_PY_READER, type SetupPyFacts } from "../../src/image/setuppy.js";
import { appRequirements, missingWheel, WheelhouseError } from "../../src/image/wheelhouse.js";
import { type FixtureFiles, writeFixtureFiles } from "../helpers/git-fixtures.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-deps-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function reqs(
  files: FixtureFiles,
  ep: { installProject: boolean; extras?: string[] } = { installProject: true },
  setupPy?: SetupPyFacts,
) {
  await writeFixtureFiles(dir, files);
  const r = await appRequirements({ dir }, ep, {
    readSetupPy: setupPy ? async () => setupPy : undefined,
  });
  const lines = (t: string) => t.trim().split("\n").filter(Boolean);
  return { ...r, lines: lines(r.text), build: lines(r.buildText), cons: lines(r.constraints) };
}

const BS = (req: string[], backend: string) =>
  `[build-system]\nrequires = ${JSON.stringify(req)}\nbuild-backend = "${backend}"\n`;

describe("declared dependencies", () => {
  it.each([
    ["setuptools", ["setuptools>=61"], "setuptools.build_meta"],
    ["hatchling", ["hatchling", "hatch-vcs"], "hatchling.build"],
    ["flit-core", ["flit_core>=3.4,<4"], "flit_core.buildapi"],
    ["pdm-backend", ["pdm-backend"], "pdm.backend"],
    ["poetry-core", ["poetry-core>=1"], "poetry.core.masonry.api"],
  ])(
    "%s: [project].dependencies installed, [build-system].requires downloaded",
    async (_n, req, backend) => {
      const r = await reqs({
        "pyproject.toml":
          BS(req, backend) + '[project]\nname = "a"\ndependencies = ["six>=1", "idna"]\n',
      });
      expect(r.lines).toEqual(["six>=1", "idna"]);
      expect(r.build).toEqual(req);
      expect(r.origins).toContain("pyproject.toml [project].dependencies");
    },
  );

  it("dynamic dependencies from a file ([tool.setuptools.dynamic]) and hatch's requirements_txt hook", async () => {
    const a = await reqs({
      "pyproject.toml":
        BS(["setuptools"], "setuptools.build_meta") +
        '[project]\nname = "a"\ndynamic = ["dependencies", "version"]\n' +
        '[tool.setuptools.dynamic]\ndependencies = { file = ["deps.in"] }\n',
      "deps.in": "pyparsing>=3\n# c\n",
    });
    expect(a.lines).toEqual(["pyparsing>=3"]);
    await rm(path.join(dir, "pyproject.toml"));
    const b = await reqs({
      "pyproject.toml":
        BS(["hatchling", "hatch-requirements-txt"], "hatchling.build") +
        '[project]\nname = "b"\ndynamic = ["dependencies"]\n' +
        '[tool.hatch.metadata.hooks.requirements_txt]\nfiles = ["reqs/run.txt"]\n',
      "reqs/run.txt": "attrs\n",
    });
    expect(b.lines).toEqual(["attrs"]);
  });

  it("dynamic dependencies with no static source: a clear error naming pyproject.toml", async () => {
    await expect(
      reqs({ "pyproject.toml": '[project]\nname = "a"\ndynamic = ["dependencies"]\n' }),
    ).rejects.toThrow(/pyproject\.toml: \[project\] lists "dependencies" in `dynamic`/);
  });

  it("optional-dependencies of the extras the entrypoint asks for, and only those", async () => {
    const r = await reqs(
      {
        "pyproject.toml":
          '[project]\nname = "a"\ndependencies = ["six"]\n[project.optional-dependencies]\nweb = ["zipp"]\ndocs = ["sphinx"]\n',
      },
      { installProject: true, extras: ["web"] },
    );
    expect(r.lines).toEqual(["six", "zipp"]);
  });

  it("Poetry: [tool.poetry.dependencies] converted to PEP 508 (python skipped, optional only via extras)", async () => {
    const r = await reqs(
      {
        "pyproject.toml":
          BS(["poetry-core"], "poetry.core.masonry.api") +
          '[tool.poetry]\nname = "p"\nversion = "1"\n[tool.poetry.dependencies]\npython = "^3.9"\n' +
          'iniconfig = "^2.0"\nattrs = { version = "~22.1", extras = ["tests"], python = ">=3.8" }\n' +
          'zipp = { version = "*", optional = true }\nsix = "1.16.0"\n[tool.poetry.extras]\nz = ["zipp"]\n',
      },
      { installProject: true, extras: ["z"] },
    );
    expect(r.lines).toEqual([
      "iniconfig>=2.0,<3",
      'attrs[tests]>=22.1,<22.2 ; python_version >= "3.8"',
      "six==1.16.0",
      "zipp",
    ]);
  });

  it.each([
    ["^1.2.3", ">=1.2.3,<2"],
    ["^0.2.3", ">=0.2.3,<0.3"],
    ["^0.0.3", ">=0.0.3,<0.0.4"],
    ["~1.2.3", ">=1.2.3,<1.3"],
    ["~1", ">=1,<2"],
    ["*", ""],
    [">=1,<2", ">=1,<2"],
    ["1.2.*", "==1.2.*"],
    ["~=1.4", "~=1.4"],
  ])("poetry constraint %s -> %s", (spec, want) => {
    expect(poetryConstraint(spec)).toBe(want);
  });

  it("Poetry git/path dependencies are refused by name", async () => {
    await expect(
      reqs({
        "pyproject.toml":
          '[tool.poetry]\nname = "p"\n[tool.poetry.dependencies]\nlib = { git = "https://example.invalid/lib.git" }\n',
      }),
    ).rejects.toThrow(/dependency 'lib' is a git dependency/);
  });

  it("old flit: [tool.flit.metadata] requires", async () => {
    const r = await reqs({
      "pyproject.toml":
        BS(["flit_core>=2,<4"], "flit_core.buildapi") +
        '[tool.flit.metadata]\nmodule = "x"\nrequires = ["six"]\n',
    });
    expect(r.lines).toEqual(["six"]);
    expect((await readProject({ dir })).name).toBe("x");
  });

  it("setup.cfg: install_requires, the entrypoint's extras, setup_requires as build requirements", async () => {
    const r = await reqs(
      {
        "setup.cfg":
          "[metadata]\nname = c\n[options]\ninstall_requires =\n    tomli>=2\n    six ; python_version >= '3'\n" +
          "setup_requires = setuptools-scm\n[options.extras_require]\nweb = zipp>=3\ndocs = sphinx\n",
      },
      { installProject: true, extras: ["web"] },
    );
    expect(r.lines).toEqual(["tomli>=2", "six ; python_version >= '3'", "zipp>=3"]);
    expect(r.build).toEqual(["setuptools>=40.8.0", "wheel", "setuptools-scm"]);
  });

  it("setup.cfg `install_requires = file: requirements.in`", async () => {
    const r = await reqs({
      "setup.cfg": "[options]\ninstall_requires = file: requirements.in\n",
      "requirements.in": "idna\n",
    });
    expect(r.lines).toEqual(["idna"]);
  });

  it("requirements.txt: -r is inlined, -c and a root constraints.txt are constraints, not requirements", async () => {
    const r = await reqs(
      {
        "requirements.txt": "-r requirements/base.txt\n-c pins.txt\nidna\n",
        "requirements/base.txt": "six\n",
        "pins.txt": "idna==3.7\n",
        "constraints.txt": "six==1.16.0\n",
      },
      { installProject: false },
    );
    expect(r.lines).toEqual(["six", "idna"]);
    expect(r.cons).toEqual(["idna==3.7", "six==1.16.0"]);
  });

  it("requirements/prod.txt when there is no requirements.txt; dev files never", async () => {
    const r = await reqs(
      { "requirements/prod.txt": "attrs\n", "requirements-dev.txt": "pytest\n" },
      { installProject: false },
    );
    expect(r.lines).toEqual(["attrs"]);
  });

  it("a literal setup.py: its install_requires (read in the container) and setup_requires", async () => {
    const r = await reqs(
      { "setup.py": "from setuptools import setup\nsetup(install_requires=['certifi'])\n" },
      { installProject: true },
      { install_requires: ["certifi"], extras_require: {}, setup_requires: ["cython-free-tool"] },
    );
    expect(r.lines).toEqual(["certifi"]);
    expect(r.build).toEqual(["setuptools>=40.8.0", "wheel", "cython-free-tool"]);
  });

  it("a computed setup.py: an error naming setup.py and asking for a requirements file; with one, a warning", async () => {
    const computed = { install_requires: null, extras_require: {}, setup_requires: [] };
    const err = await reqs({ "setup.py": "setup()\n" }, { installProject: true }, computed).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(WheelhouseError);
    expect((err as WheelhouseError).message).toMatch(
      /setup\.py: install_requires is not a literal/,
    );
    expect((err as WheelhouseError).hint).toMatch(/requirements\.txt/);
    const ok = await reqs({ "requirements.txt": "six\n" }, { installProject: true }, computed);
    expect(ok.lines).toEqual(["six"]);
    expect(ok.warnings.join()).toMatch(/using requirements\.txt/);
  });

  it("a URL in [project].dependencies is refused", async () => {
    await expect(
      reqs({
        "pyproject.toml": '[project]\nname = "a"\ndependencies = ["x @ https://e.invalid/x.whl"]\n',
      }),
    ).rejects.toThrow(/URL, path or VCS reference/);
  });

  it("pip's 'no version' line becomes the package and version named", () => {
    expect(
      missingWheel([
        "ERROR: Could not find a version that satisfies the requirement nowheel==1.0 (from versions: 0.1, 0.2)",
      ]),
    ).toEqual({ requirement: "nowheel==1.0", name: "nowheel", versions: "0.1, 0.2" });
    expect(missingWheel(["something else"])).toBeUndefined();
  });
});

describe("setup.py reader (Python ast, never executed)", () => {
  function read(text: string): SetupPyFacts {
    const file = path.join(dir, "setup.py");
    execFileSync("sh", ["-c", 'cat > "$1"', "sh", file], { input: text });
    const out = execFileSync("python3", ["-I", "-S", "-c", SETUP_PY_READER, file], {
      encoding: "utf8",
    });
    return JSON.parse(out) as SetupPyFacts;
  }

  it("literal lists, names bound to literals, concatenation, extras", () => {
    expect(
      read(
        "import os\nBASE = ['a']\nREQ = BASE + ['b>=1']\nos.system('touch /tmp/pwned-iac')\n" +
          "setup(name='x', install_requires=REQ, extras_require={'web': ['c']}, setup_requires='d\\n')\n",
      ),
    ).toEqual({
      install_requires: ["a", "b>=1"],
      extras_require: { web: ["c"] },
      setup_requires: ["d"],
    });
  });

  it("computed values are null; syntax errors and no setup() are reported", () => {
    expect(read("setup(install_requires=open('r').read().split())\n").install_requires).toBeNull();
    expect(read("setup(\n").error).toMatch(/syntax error at line/);
    expect(read("print(1)\n").error).toBe("no setup() call found");
    expect(read("import setuptools\nsetuptools.setup()\n")).toEqual({
      install_requires: [],
      extras_require: {},
      setup_requires: [],
    });
  });
});

describe("the project model is read once per source", () => {
  it("detection and the wheelhouse share one parse of pyproject.toml", async () => {
    await writeFixtureFiles(dir, {
      "pyproject.toml":
        '[project]\nname = "once"\ndependencies = ["six"]\n[project.scripts]\nonce = "once:main"\n',
      "once/__init__.py": "def main():\n    return 0\n",
    });
    const source = { dir, root: dir, commit: "local-x", via: "local" as const };
    const ep = await detectEntrypoint(source);
    const model = await readProject(source);
    // Changing the file now changes nothing for this source: the model was parsed once.
    await writeFile(path.join(dir, "pyproject.toml"), '[project]\nname = "other"\n');
    expect(await readProject(source)).toBe(model);
    expect((await appRequirements(source, ep)).text).toBe("six\n");
    // A new source object reads the file again.
    expect((await readProject({ ...source })).name).toBe("other");
  });
});
