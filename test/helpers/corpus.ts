// The real-world corpus (issue 12): fixture repositories that mimic the layouts public Python
// projects use, built on the fly as git repos and served by the local GitHub stand-in, so they
// are fetched the way GitHub serves them (a tarball: no `.git`).
//
// One entry per fixture. To add one, append a CorpusEntry to CORPUS:
//   - `files`: the repository (FixtureFiles; `{content, mode: 0o755}` for executables);
//   - `inspect`: what `iac inspect --output json` must report for it (kind/argv/rule, or an
//     error pattern; `version` when the version is asserted);
//   - `run` (optional): build the image and run it; "SERVING" or "NOT_SERVING" is what the
//     runner's HealthCheck must reach, `logs` a pattern its output must show;
//     `buildError` instead when the build itself must fail with that message;
//   - `subdir` (monorepos), `tag` (the ref is that tag), `repos` (extra keys of the service's
//     entry in the repos file, e.g. {entrypoint: "..."}).
// test/component/corpus-inspect.test.ts asserts every entry through the real CLI;
// test/corpus/corpus-run.test.ts builds and runs the entries that have `run`.
import { type FixtureFiles, type FixtureRepo, createGitRepo } from "./git-fixtures.js";
import type { GitHubServer } from "./github-server.js";
import type Docker from "dockerode";
import { containerLogs } from "./runtime-fixtures.js";

export type Health = "SERVING" | "NOT_SERVING";

export interface CorpusEntry {
  /** Repository name (`gh:corpus/<name>`); also the service name unless `repos.name` says else. */
  name: string;
  /** The real-world layout it mimics. */
  about: string;
  files: FixtureFiles;
  /** Monorepo: the folder after `//` in the slug. */
  subdir?: string;
  /** Tag the commit with this name and use it as the ref (default ref: `main`). */
  tag?: string;
  /** Extra keys for the service's entry in the repos file (entrypoint, env, port, ...). */
  repos?: Record<string, unknown>;
  inspect:
    | {
        kind: string;
        argv: string[];
        rule: string;
        version?: string | RegExp;
        /** "dockerfile" when the image is built from the repo's own Dockerfile. */
        build?: "dockerfile";
      }
    | { error: RegExp };
  /** Build and run it (integration corpus). */
  run?:
    | { health: Health; logs?: RegExp; buildError?: never }
    | { buildError: RegExp; health?: never; logs?: never };
}

// ---------------------------------------------------------------------------------------------
// building blocks

/** main() that imports `imports`, prints a marker with their versions and returns 0. */
export function appModule(marker: string, imports: string[] = []): string {
  const lines = imports.map((m) => `import ${m}`);
  const versions = imports
    .map((m) => `getattr(${m}, "__version__", "?")`)
    .join(", ")
    .trim();
  return [
    "import sys",
    ...lines,
    "",
    "",
    "def main():",
    `    print(${JSON.stringify(marker)}, ${versions || '""'}, flush=True)`,
    "    return 0",
    "",
  ].join("\n");
}

const toml = (...lines: string[]) => lines.join("\n") + "\n";

/** An `[build-system]` table. */
export const buildSystem = (requires: string[], backend: string) =>
  toml(
    "[build-system]",
    `requires = ${JSON.stringify(requires)}`,
    `build-backend = ${JSON.stringify(backend)}`,
    "",
  );

const MAIN_CALL = '\n\nif __name__ == "__main__":\n    sys.exit(main())\n';

// ---------------------------------------------------------------------------------------------
// the corpus

export const CORPUS: CorpusEntry[] = [
  {
    name: "root-dunder-main",
    about: "a script repo: __main__.py at the root",
    files: { "__main__.py": appModule("hello from root-dunder-main") + MAIN_CALL },
    inspect: { kind: "python-file", argv: ["python", "__main__.py"], rule: "root-__main__.py" },
  },
  {
    name: "root-main-function",
    about: "main.py defining main() that nothing calls (library-style entry)",
    files: { "main.py": appModule("hello from root-main-function") },
    inspect: {
      kind: "python-main-function",
      argv: ["python", "-c", "import sys, main; sys.exit(main.main())"],
      rule: "root-main.py-main-function",
    },
    run: { health: "SERVING", logs: /hello from root-main-function/ },
  },
  {
    name: "async-main",
    about: "main.py with `async def main()` (asyncio services)",
    files: {
      "main.py":
        "import asyncio\n\n\nasync def main():\n    await asyncio.sleep(0)\n    print('async ok')\n",
    },
    inspect: {
      kind: "python-main-function",
      argv: ["python", "-c", "import asyncio, sys, main; sys.exit(asyncio.run(main.main()))"],
      rule: "root-main.py-main-function",
    },
  },
  {
    name: "script-with-guard",
    about: 'main.py that runs itself under if __name__ == "__main__"',
    files: { "main.py": appModule("hello from script-with-guard") + MAIN_CALL },
    inspect: { kind: "python-file", argv: ["python", "main.py"], rule: "root-main.py" },
  },
  {
    name: "flat-package-main",
    about: "a flat package with pkg/__main__.py (python -m pkg)",
    files: {
      "tool/__init__.py": "",
      "tool/__main__.py": appModule("hello from flat-package-main") + "\nsys.exit(main())\n",
    },
    inspect: { kind: "python-module", argv: ["python", "-m", "tool"], rule: "package-__main__" },
  },
  {
    name: "src-layout",
    about: "setuptools src layout with [project.scripts]",
    files: {
      "pyproject.toml":
        buildSystem(["setuptools>=61"], "setuptools.build_meta") +
        toml(
          "[project]",
          'name = "srclayout"',
          'version = "2.3.4"',
          "",
          "[project.scripts]",
          'srclayout = "srclayout.cli:main"',
        ),
      "src/srclayout/__init__.py": "",
      "src/srclayout/cli.py": appModule("hello from src-layout"),
    },
    inspect: { kind: "console-script", argv: ["srclayout"], rule: "pyproject-project-scripts" },
  },
  {
    name: "src-package-main",
    about: "src/{pkg}/__main__.py without scripts",
    files: {
      "pyproject.toml":
        buildSystem(["setuptools>=61"], "setuptools.build_meta") +
        toml("[project]", 'name = "srcmain"', 'version = "0.1.0"'),
      "src/srcmain/__init__.py": "",
      "src/srcmain/__main__.py": appModule("hello from src-package-main") + "\nsys.exit(main())\n",
    },
    inspect: {
      kind: "python-module",
      argv: ["python", "-m", "srcmain"],
      rule: "src-package-__main__",
    },
  },
  {
    name: "poetry-file-script",
    about: "Poetry with a file script (unsupported: a clear error)",
    files: {
      "pyproject.toml": toml(
        "[tool.poetry]",
        'name = "pfs"',
        'version = "1.0.0"',
        "[tool.poetry.scripts]",
        'run = { reference = "bin/run.sh", type = "file" }',
      ),
    },
    inspect: { error: /\[tool\.poetry\.scripts\]: script 'run' is a file script/ },
  },
  {
    name: "non-python-executable",
    about: "no Python at all: an executable `main` shell script",
    files: {
      main: {
        content: "#!/bin/sh\necho 'hello from non-python-executable'\nexit 0\n",
        mode: 0o755,
      },
      "README.md": "a shell service\n",
    },
    inspect: { kind: "executable", argv: ["./main"], rule: "root-executable-main" },
    run: { health: "SERVING", logs: /hello from non-python-executable/ },
  },
  {
    name: "main-not-executable",
    about: "a `main` file without the executable bit (and nothing else): the error says how",
    files: { main: "#!/bin/sh\necho hi\n" },
    inspect: { error: /present but not executable \(git update-index --chmod=\+x main\)/ },
  },
  {
    name: "nothing-to-run",
    about: "a docs-only repository",
    files: { "README.md": "docs only\n", "docs/index.md": "# docs\n" },
    inspect: { error: /no entrypoint found in the repository root; looked for:/ },
  },
  {
    name: "invalid-pyproject",
    about: "a pyproject.toml that is not valid TOML",
    files: { "pyproject.toml": "[project\nname = 1\n", "main.py": "print(1)\n" },
    inspect: { error: /pyproject\.toml:1:\d+: invalid TOML/ },
  },
  {
    name: "pyproject-override",
    about: "[tool.iac] entrypoint in pyproject.toml wins over main.py",
    files: {
      "pyproject.toml": toml(
        "[project]",
        'name = "ovr"',
        'version = "0.0.1"',
        "[tool.iac]",
        'entrypoint = ["python", "serve.py"]',
      ),
      "serve.py": "print('serve')\n",
      "main.py": appModule("not me"),
    },
    inspect: { kind: "python-file", argv: ["python", "serve.py"], rule: "override-pyproject" },
  },
  {
    name: "repos-file-override",
    about: "`entrypoint:` in the repos file wins over everything",
    files: { "main.py": appModule("not me"), "worker.py": "print('worker')\n" },
    repos: { entrypoint: "python worker.py" },
    inspect: { kind: "python-file", argv: ["python", "worker.py"], rule: "override-repos-file" },
  },
  {
    name: "monorepo-api",
    about: "a monorepo: services/api is its own project (slug //services/api)",
    subdir: "services/api",
    files: {
      "README.md": "monorepo\n",
      "services/api/pyproject.toml":
        buildSystem(["setuptools>=61"], "setuptools.build_meta") +
        toml(
          "[project]",
          'name = "mono-api"',
          'version = "0.3.0"',
          "",
          "[project.scripts]",
          'mono-api = "monoapi.server:main"',
        ),
      "services/api/src/monoapi/__init__.py": "",
      "services/api/src/monoapi/server.py": appModule("hello from monorepo-api"),
      "services/worker/main.py": appModule("worker") + MAIN_CALL,
    },
    inspect: { kind: "console-script", argv: ["mono-api"], rule: "pyproject-project-scripts" },
    run: { health: "SERVING", logs: /hello from monorepo-api/ },
  },
  {
    name: "monorepo-worker",
    about: "the same monorepo shape, the worker folder (main.py) only",
    subdir: "services/worker",
    files: {
      "services/api/main.py": appModule("api") + MAIN_CALL,
      "services/worker/main.py": appModule("hello from monorepo-worker") + MAIN_CALL,
    },
    inspect: { kind: "python-file", argv: ["python", "main.py"], rule: "root-main.py" },
  },
  {
    name: "undeclared-dependency",
    about: "main() imports a package the repo never declares: fails at import (NOT_SERVING)",
    files: {
      "main.py": appModule("never printed", ["yaml"]),
    },
    inspect: {
      kind: "python-main-function",
      argv: ["python", "-c", "import sys, main; sys.exit(main.main())"],
      rule: "root-main.py-main-function",
    },
    run: { health: "NOT_SERVING", logs: /ModuleNotFoundError: No module named 'yaml'/ },
  },
  // --- one per build backend / dependency declaration (built and run in the integration corpus)
  {
    name: "hatch-vcs",
    about: "hatchling + hatch-vcs: version from the git tag, src layout, [project.dependencies]",
    tag: "v1.4.2",
    files: {
      "pyproject.toml":
        buildSystem(["hatchling", "hatch-vcs"], "hatchling.build") +
        toml(
          "[project]",
          'name = "hatchapp"',
          'dynamic = ["version"]',
          'dependencies = ["six>=1.16"]',
          "",
          "[project.scripts]",
          'hatchapp = "hatchapp.cli:main"',
          "",
          "[tool.hatch.version]",
          'source = "vcs"',
        ),
      "src/hatchapp/__init__.py": "",
      "src/hatchapp/cli.py": appModule("hello from hatch-vcs", ["six"]).replace(
        "    return 0",
        "    from importlib.metadata import version\n" +
          '    print("hatchapp version", version("hatchapp"), flush=True)\n    return 0',
      ),
    },
    inspect: {
      kind: "console-script",
      argv: ["hatchapp"],
      rule: "pyproject-project-scripts",
      version: "1.4.2",
    },
    run: { health: "SERVING", logs: /hatchapp version 1\.4\.2/ },
  },
  {
    name: "setuptools-scm",
    about: "setuptools + setuptools-scm, no tag at the commit: 0.0.0+g<sha>; flat package",
    files: {
      "pyproject.toml":
        buildSystem(["setuptools>=64", "setuptools-scm>=8"], "setuptools.build_meta") +
        toml(
          "[project]",
          'name = "scm-app"',
          'dynamic = ["version"]',
          'dependencies = ["idna>=3"]',
          "",
          "[project.scripts]",
          'scm-app = "scmapp.cli:main"',
          "",
          "[tool.setuptools]",
          'packages = ["scmapp"]',
          "",
          "[tool.setuptools_scm]",
        ),
      "scmapp/__init__.py": "",
      "scmapp/cli.py": appModule("hello from setuptools-scm", ["idna"]).replace(
        "    return 0",
        "    from importlib.metadata import version\n" +
          '    print("scm-app version", version("scm-app"), flush=True)\n    return 0',
      ),
    },
    inspect: {
      kind: "console-script",
      argv: ["scm-app"],
      rule: "pyproject-project-scripts",
      version: /^0\.0\.0\+g[0-9a-f]{7}$/,
    },
    run: { health: "SERVING", logs: /scm-app version 0\.0\.0\+g[0-9a-f]{7}/ },
  },
  {
    name: "poetry",
    about: "Poetry (poetry-core): [tool.poetry.dependencies] with ^ constraints, poetry scripts",
    files: {
      "pyproject.toml":
        buildSystem(["poetry-core>=1.0.0"], "poetry.core.masonry.api") +
        toml(
          "[tool.poetry]",
          'name = "poet"',
          'version = "0.4.0"',
          'description = "a poetry app"',
          'authors = ["Fixture <fixture@example.invalid>"]',
          "",
          "[tool.poetry.dependencies]",
          'python = "^3.9"',
          'iniconfig = "^2.0"',
          "",
          "[tool.poetry.scripts]",
          'poet = "poet.cli:main"',
        ),
      "poet/__init__.py": "",
      "poet/cli.py": appModule("hello from poetry", ["iniconfig"]),
    },
    inspect: { kind: "console-script", argv: ["poet"], rule: "pyproject-poetry-scripts" },
    run: { health: "SERVING", logs: /hello from poetry/ },
  },
  {
    name: "flit",
    about: "flit-core: version and description read from the module, [project.dependencies]",
    files: {
      "pyproject.toml":
        buildSystem(["flit_core>=3.4,<4"], "flit_core.buildapi") +
        toml(
          "[project]",
          'name = "flitapp"',
          'dynamic = ["version", "description"]',
          'dependencies = ["attrs>=22"]',
          "",
          "[project.scripts]",
          'flitapp = "flitapp.cli:main"',
        ),
      "flitapp/__init__.py": '"""A flit app."""\n__version__ = "3.1.0"\n',
      "flitapp/cli.py": appModule("hello from flit", ["attrs"]),
    },
    inspect: { kind: "console-script", argv: ["flitapp"], rule: "pyproject-project-scripts" },
    run: { health: "SERVING", logs: /hello from flit/ },
  },
  {
    name: "pdm",
    about: "pdm-backend with the version from SCM; a tag that is no version (release-7)",
    tag: "release-7",
    files: {
      "pyproject.toml":
        buildSystem(["pdm-backend"], "pdm.backend") +
        toml(
          "[project]",
          'name = "pdmapp"',
          'dynamic = ["version"]',
          'dependencies = ["packaging>=23"]',
          "",
          "[project.scripts]",
          'pdmapp = "pdmapp.cli:main"',
          "",
          "[tool.pdm.version]",
          'source = "scm"',
        ),
      "src/pdmapp/__init__.py": "",
      "src/pdmapp/cli.py": appModule("hello from pdm", ["packaging"]).replace(
        "    return 0",
        "    from importlib.metadata import version\n" +
          '    print("pdmapp version", version("pdmapp"), flush=True)\n    return 0',
      ),
    },
    inspect: {
      kind: "console-script",
      argv: ["pdmapp"],
      rule: "pyproject-project-scripts",
      version: /^0\.0\.0\+g[0-9a-f]{7}$/,
    },
    run: { health: "SERVING", logs: /pdmapp version 0\.0\.0\+g[0-9a-f]{7}/ },
  },
  {
    name: "setup-cfg-only",
    about:
      "setup.cfg metadata, install_requires and console_scripts; pyproject only names the backend",
    tag: "2.0.1",
    files: {
      "pyproject.toml": buildSystem(["setuptools>=61"], "setuptools.build_meta"),
      "setup.cfg": [
        "[metadata]",
        "name = cfgapp",
        "version = 2.0.1",
        "",
        "[options]",
        "packages = find:",
        "install_requires =",
        "    tomli>=2",
        "",
        "[options.entry_points]",
        "console_scripts =",
        "    cfgapp = cfgapp.cli:main",
        "",
      ].join("\n"),
      "cfgapp/__init__.py": "",
      "cfgapp/cli.py": appModule("hello from setup-cfg-only", ["tomli"]),
    },
    inspect: {
      kind: "console-script",
      argv: ["cfgapp"],
      rule: "setup.cfg-console-scripts",
      version: "2.0.1",
    },
    run: { health: "SERVING", logs: /hello from setup-cfg-only/ },
  },
  {
    name: "setup-cfg-extras",
    about: "setup.cfg console script that needs an extra ([web]) from options.extras_require",
    files: {
      "setup.py": "from setuptools import setup\n\nsetup()\n",
      "setup.cfg": [
        "[metadata]",
        "name = extrasapp",
        "version = 1.0",
        "",
        "[options]",
        "packages = extrasapp",
        "",
        "[options.extras_require]",
        "web = zipp>=3",
        "docs = sphinx",
        "",
        "[options.entry_points]",
        "console_scripts =",
        "    extrasapp = extrasapp.cli:main [web]",
        "",
      ].join("\n"),
      "extrasapp/__init__.py": "",
      "extrasapp/cli.py": appModule("hello from setup-cfg-extras", ["zipp"]),
    },
    inspect: { kind: "console-script", argv: ["extrasapp"], rule: "setup.cfg-console-scripts" },
    run: { health: "SERVING", logs: /hello from setup-cfg-extras/ },
  },
  {
    name: "literal-setup-py",
    about: "a legacy setup.py with literal install_requires (read with ast in a container)",
    files: {
      "setup.py": [
        "from setuptools import setup",
        "",
        "REQUIRES = ['certifi>=2023']",
        "",
        "setup(",
        "    name='legacyapp',",
        "    version='0.9.0',",
        "    package_dir={'': 'src'},",
        "    packages=['legacyapp'],",
        "    install_requires=REQUIRES,",
        ")",
        "",
      ].join("\n"),
      "src/legacyapp/__init__.py": "",
      "src/legacyapp/__main__.py":
        appModule("hello from literal-setup-py", ["certifi"]) + "\nsys.exit(main())\n",
    },
    inspect: {
      kind: "python-module",
      argv: ["python", "-m", "legacyapp"],
      rule: "src-package-__main__",
    },
    run: { health: "SERVING", logs: /hello from literal-setup-py/ },
  },
  {
    name: "computed-setup-py",
    about: "a setup.py that computes install_requires and no requirements file: a clear error",
    files: {
      "setup.py": [
        "from setuptools import setup",
        "",
        "setup(",
        "    name='computed',",
        "    version='1.0',",
        "    package_dir={'': 'src'},",
        "    packages=['computed'],",
        "    install_requires=open('deps.in').read().split(),",
        ")",
        "",
      ].join("\n"),
      "deps.in": "six\n",
      "src/computed/__init__.py": "",
      "src/computed/__main__.py": appModule("computed") + "\nsys.exit(main())\n",
    },
    inspect: {
      kind: "python-module",
      argv: ["python", "-m", "computed"],
      rule: "src-package-__main__",
    },
    run: { buildError: /setup\.py: install_requires is not a literal[\s\S]*requirements\.txt/ },
  },
  {
    name: "namespace-package",
    about: "PEP 420 namespace package (src/acme/tools, no acme/__init__.py)",
    files: {
      "pyproject.toml":
        buildSystem(["setuptools>=61"], "setuptools.build_meta") +
        toml(
          "[project]",
          'name = "acme-tools"',
          'version = "5.0.0"',
          'dependencies = ["markupsafe>=2"]',
          "",
          "[project.scripts]",
          'acme-tools = "acme.tools.cli:main"',
          "",
          "[tool.setuptools.packages.find]",
          'where = ["src"]',
          "namespaces = true",
        ),
      "src/acme/tools/__init__.py": "",
      "src/acme/tools/cli.py": appModule("hello from namespace-package", ["markupsafe"]),
    },
    inspect: { kind: "console-script", argv: ["acme-tools"], rule: "pyproject-project-scripts" },
    run: { health: "SERVING", logs: /hello from namespace-package/ },
  },
  {
    name: "requirements-includes",
    about: "requirements.txt with -r base.txt and -c constraints.txt (a pin, not a requirement)",
    files: {
      "main.py": appModule("hello from requirements-includes", ["six", "idna"]) + MAIN_CALL,
      "requirements.txt": "-r requirements/base.txt\n-c constraints.txt\nidna\n",
      "requirements/base.txt": "six  # runtime\n",
      "constraints.txt": "idna==3.7\nrequests==2.32.3\n",
    },
    inspect: { kind: "python-file", argv: ["python", "main.py"], rule: "root-main.py" },
    run: { health: "SERVING", logs: /hello from requirements-includes \S+ 3\.7/ },
  },
  {
    name: "dynamic-dependencies",
    about: "setuptools: dependencies dynamic, from a file ([tool.setuptools.dynamic])",
    files: {
      "pyproject.toml":
        buildSystem(["setuptools>=61"], "setuptools.build_meta") +
        toml(
          "[project]",
          'name = "dyndeps"',
          'version = "1.0.0"',
          'dynamic = ["dependencies"]',
          "",
          "[project.scripts]",
          'dyndeps = "dyndeps:main"',
          "",
          "[tool.setuptools.dynamic]",
          'dependencies = { file = ["requirements.in"] }',
        ),
      "requirements.in": "pyparsing>=3\n",
      "dyndeps/__init__.py": appModule("hello from dynamic-dependencies", ["pyparsing"]),
    },
    inspect: { kind: "console-script", argv: ["dyndeps"], rule: "pyproject-project-scripts" },
  },
  {
    name: "flit-legacy-metadata",
    about: "old flit: [tool.flit.metadata] requires and [tool.flit.scripts]",
    files: {
      "pyproject.toml":
        buildSystem(["flit_core>=2,<4"], "flit_core.buildapi") +
        toml(
          "[tool.flit.metadata]",
          'module = "oldflit"',
          'requires = ["six"]',
          "",
          "[tool.flit.scripts]",
          'oldflit = "oldflit:main"',
        ),
      "oldflit/__init__.py": '"""old flit."""\n__version__ = "1.0"\n',
      "oldflit/__main__.py": appModule("hello from flit-legacy-metadata") + "\nsys.exit(main())\n",
    },
    inspect: { kind: "python-module", argv: ["python", "-m", "oldflit"], rule: "package-__main__" },
  },
  {
    name: "maturin",
    about: "maturin (Rust extension): its own build needs Rust, so only wheels can be used",
    files: {
      "pyproject.toml":
        buildSystem(["maturin>=1,<2"], "maturin") +
        toml(
          "[project]",
          'name = "rusty"',
          'version = "0.1.0"',
          "",
          "[project.scripts]",
          'rusty = "rusty:main"',
        ),
      "Cargo.toml": '[package]\nname = "rusty"\nversion = "0.1.0"\n',
      "rusty/__init__.py": appModule("rusty"),
    },
    inspect: { kind: "console-script", argv: ["rusty"], rule: "pyproject-project-scripts" },
    run: { buildError: /maturin[\s\S]*Rust/ },
  },
  {
    name: "no-wheel-dependency",
    about: "a pin of a release that has no wheel for CPython 3.11 on Linux (sdist only)",
    files: {
      "main.py": appModule("never built", ["yaml"]) + MAIN_CALL,
      "requirements.txt": "PyYAML==5.3.1\n",
    },
    inspect: { kind: "python-file", argv: ["python", "main.py"], rule: "root-main.py" },
    run: { buildError: /no wheel of PyYAML==5\.3\.1 for CPython 3\.11 manylinux/ },
  },
  // Issue 12 items 3, 4, 6: Procfile, a repo's own Dockerfile, the ENTRYPOINT label, telemetry.
  {
    name: "procfile-web",
    about: "Heroku/Paketo Procfile: web wins over worker and release, and over main.py",
    files: {
      Procfile:
        "release: python migrate.py\nworker: python -m shop.worker\nweb: python -m shop.web --port 8080\n",
      "migrate.py": "print('migrating')\n",
      "main.py": appModule("main.py must not run") + MAIN_CALL,
      "shop/__init__.py": "",
      "shop/web.py":
        "import sys\nprint('hello from procfile-web', sys.argv[1:], flush=True)\nsys.exit(0)\n",
      "shop/worker.py": "print('worker')\n",
    },
    inspect: {
      kind: "python-module",
      argv: ["python", "-m", "shop.web", "--port", "8080"],
      rule: "procfile",
    },
    run: { health: "SERVING", logs: /hello from procfile-web \['--port', '8080'\]/ },
  },
  {
    name: "procfile-worker",
    about: "one service per Procfile process type: entrypoint {process: worker} in the repos file",
    files: {
      Procfile: "web: gunicorn shop:app\nworker: python -m shop.worker --queue default\n",
      "shop/__init__.py": "",
      "shop/worker.py": "print('worker')\n",
    },
    repos: { entrypoint: { process: "worker" } },
    inspect: {
      kind: "python-module",
      argv: ["python", "-m", "shop.worker", "--queue", "default"],
      rule: "override-repos-file-process",
    },
  },
  {
    name: "procfile-shell",
    about: "a Procfile command that needs a shell ($PORT) is refused, naming the line",
    files: { Procfile: "web: gunicorn app:app --bind 0.0.0.0:$PORT\n", "app.py": "" },
    inspect: { error: /Procfile:1 \(web\): .*needs a shell/ },
  },
  {
    name: "own-dockerfile",
    about:
      "build: dockerfile: the repo's own Dockerfile (FROM python:3.11-slim) + LABEL io.iac.entrypoint",
    files: {
      Dockerfile: [
        "FROM python:3.11-slim",
        "ENV GREETING=own-dockerfile",
        "WORKDIR /srv",
        "COPY app.py ./",
        "RUN python3 -c \"open('/srv/stamp', 'w').write('built')\"",
        'LABEL io.iac.entrypoint="python3 app.py"',
        'CMD ["python3", "-c", "raise SystemExit(9)"]',
        "",
      ].join("\n"),
      "app.py":
        "import os\nprint('hello from', os.environ['GREETING'], open('/srv/stamp').read(), os.getcwd(), flush=True)\n",
    },
    repos: { build: "dockerfile" },
    inspect: {
      kind: "python-file",
      argv: ["python3", "app.py"],
      rule: "override-dockerfile-label",
      build: "dockerfile",
    },
    run: { health: "SERVING", logs: /hello from own-dockerfile built \/srv/ },
  },
  {
    name: "own-dockerfile-cmd",
    about: '[tool.iac] build = "dockerfile"; ENTRYPOINT + CMD in exec form',
    files: {
      "pyproject.toml": toml("[tool.iac]", 'build = "dockerfile"'),
      Dockerfile:
        'FROM python:3.11-slim AS base\nWORKDIR /srv\nCOPY . .\nFROM base\nENTRYPOINT ["python3", "-m", "svc"]\nCMD ["--fast"]\n',
      "svc/__init__.py": "",
      "svc/__main__.py": "print('svc')\n",
    },
    inspect: {
      kind: "python-module",
      argv: ["python3", "-m", "svc", "--fast"],
      rule: "dockerfile-entrypoint",
      build: "dockerfile",
    },
  },
  {
    name: "repos-file-label",
    about: "the ENTRYPOINT label in the repos file: labels {io.iac.entrypoint: ...}",
    files: { "main.py": appModule("main") + MAIN_CALL, "serve.py": "print('serve')\n" },
    repos: { labels: { "io.iac.entrypoint": '["python", "serve.py"]', "com.acme.team": "corpus" } },
    inspect: {
      kind: "python-file",
      argv: ["python", "serve.py"],
      rule: "override-repos-file-label",
    },
  },
  {
    name: "otel-instrumented",
    about: "telemetry: auto: main()'s own spans and metrics on stdout, one JSON line each",
    files: {
      "main.py": [
        "from opentelemetry import metrics, trace",
        "",
        "",
        "def main():",
        '    with trace.get_tracer("corpus").start_as_current_span("corpus-span"):',
        '        metrics.get_meter("corpus").create_counter("corpus.count").add(1)',
        '        print("hello from otel-instrumented", flush=True)',
        "    return 0",
        "",
      ].join("\n"),
    },
    inspect: {
      kind: "python-main-function",
      argv: ["python", "-c", "import sys, main; sys.exit(main.main())"],
      rule: "root-main.py-main-function",
    },
    repos: { telemetry: "auto" },
    // Both, in whichever order the SDK flushes them at exit.
    run: {
      health: "SERVING",
      logs: /^(?=[\s\S]*^\{"name": "corpus-span")(?=[\s\S]*^\{"resource_metrics".*"corpus\.count")/m,
    },
  },
  {
    name: "otel-off",
    about: "telemetry: off: no OpenTelemetry in the app's venv",
    files: {
      "main.py":
        "import importlib.util\nprint('otel-off: opentelemetry', 'present' if importlib.util.find_spec('opentelemetry') else 'absent', flush=True)\n",
    },
    repos: { telemetry: "off" },
    inspect: { kind: "python-file", argv: ["python", "main.py"], rule: "root-main.py" },
    run: { health: "SERVING", logs: /otel-off: opentelemetry absent/ },
  },
];

/** The repos file entry of a corpus fixture (slug `gh:corpus/<name>[//subdir]#<tag|main>`). */
export function corpusService(e: CorpusEntry): Record<string, unknown> {
  const slug = `gh:corpus/${e.name}${e.subdir ? `//${e.subdir}` : ""}#${e.tag ?? "main"}`;
  return { slug, name: e.name, ...(e.repos ?? {}) };
}

/** A repos file (JSON, which the repos file reader takes as YAML 1.2) for these entries. */
export function corpusReposFile(entries: CorpusEntry[]): string {
  return JSON.stringify({ services: entries.map(corpusService) }, null, 2) + "\n";
}

/**
 * Creates each entry's git repo (tagged when `tag` is set) and serves it from the GitHub
 * stand-in as `corpus/<name>`. Returns the repos by name; `cleanup()` removes them all.
 */
export async function serveCorpus(
  srv: GitHubServer,
  entries: CorpusEntry[],
): Promise<{ repos: Map<string, FixtureRepo>; cleanup: () => Promise<void> }> {
  const repos = new Map<string, FixtureRepo>();
  for (const e of entries) {
    const repo = await createGitRepo(e.files, { message: e.about });
    if (e.tag) repo.tag(e.tag);
    repos.set(e.name, repo);
    await srv.addRepo(`corpus/${e.name}`, repo.dir);
  }
  return {
    repos,
    cleanup: async () => {
      await Promise.all([...repos.values()].map((r) => r.cleanup()));
    },
  };
}

/**
 * Waits (bounded) until the runner logged that main() finished — every corpus main() returns
 * at once, but under auto-instrumentation and load its start can take seconds, and the
 * runner answers SERVING while main() still runs — and returns the logs.
 */
export async function logsAfterMainExit(
  container: Docker.Container,
  deadlineMs = 120_000,
): Promise<string> {
  const until = Date.now() + deadlineMs;
  let logs = await containerLogs(container);
  while (!/main\(\) (exited with code|was killed by)/.test(logs) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    logs = await containerLogs(container);
  }
  return logs;
}
