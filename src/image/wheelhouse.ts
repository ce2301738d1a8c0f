// Offline image builds: containers here cannot reach PyPI, so the host's pip downloads
// wheels (never sdists: building one would run the repository's code on this host) into a
// cache, and the image installs from them with `pip install --no-index --find-links`.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import type { Entrypoint, Source } from "../kernel/types.js";
import type { SourceTree } from "../detect/tree.js";
import {
  declaredDependencies,
  ProjectFileError,
  readProject,
  type ProjectModel,
} from "../detect/project.js";
import type { SetupPyFacts } from "./setuppy.js";
import { runTool } from "../platform/exec.js";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const RUNNER_DIR = path.join(REPO_ROOT, "runner");
/** Build tooling for `pip install /app` inside the image (pinned for reproducible tags). */
export const BUILD_TOOLS = ["setuptools==84.2.1", "wheel==0.48.0"];
/** The images run CPython 3.11 on glibc >= 2.36 (bookworm); pip expands this to older tags. */
export const TARGET = { pythonVersion: "3.11", implementation: "cp", glibc: "2_36" };

export class WheelhouseError extends IacError {
  override name = "WheelhouseError";
}

export interface Wheelhouse {
  /** Directory with the .whl files (absolute). */
  dir: string;
  files: string[];
  /** Content key of what was requested (requirements + target). */
  key: string;
}

export interface AppRequirements {
  /** Sanitized requirement lines for the image (empty when the app needs nothing). */
  text: string;
  /** What building the project needs (downloaded into the wheelhouse, not installed in the app). */
  buildText: string;
  /** Constraint lines (`-c` includes, constraints.txt): they pin versions, they add nothing. */
  constraints: string;
  /** Where they came from, for messages. */
  origins: string[];
  warnings: string[];
}

function machineArch(): string {
  return process.arch === "arm64" ? "aarch64" : "x86_64";
}

function targetPlatform(): string {
  return `manylinux_${TARGET.glibc}_${machineArch()}`;
}

/** The host interpreter whose pip downloads wheels: the repo's .venv, else python3. */
export function hostPython(): string {
  const venv = path.join(REPO_ROOT, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

/** A pip download that has not finished in this long is stuck (a dead mirror), not slow. */
const PIP_TIMEOUT_MS = 15 * 60_000;

function sha(parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 20);
}

/**
 * Downloads wheels for `requirements` (pip requirement lines) into
 * `${cacheDir}/wheels/<prefix>-<hash>`; reused when present. Atomic: a crash never leaves
 * a half-filled directory that looks complete.
 */
export async function ensureWheelhouse(
  config: Pick<Config, "cacheDir" | "pipIndexUrl">,
  prefix: string,
  requirements: string,
  opts: { signal?: AbortSignal; onLine?: (line: string) => void; constraints?: string } = {},
): Promise<Wheelhouse> {
  const constraints = opts.constraints ?? "";
  const key = sha([
    requirements,
    targetPlatform(),
    TARGET.pythonVersion,
    config.pipIndexUrl ?? "",
    ...(constraints ? [constraints] : []),
  ]);
  const root = path.join(config.cacheDir, "wheels");
  const dir = path.join(root, `${prefix}-${key}`);
  const marker = path.join(dir, ".complete");
  if (!existsSync(marker)) {
    await mkdir(root, { recursive: true });
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await mkdir(tmp);
      const reqFile = path.join(tmp, ".requirements.txt");
      await writeFile(reqFile, requirements);
      const conFile = path.join(tmp, ".constraints.txt");
      if (constraints) await writeFile(conFile, constraints);
      const argv = [
        hostPython(),
        ...["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input"],
        ...["--dest", tmp, "--only-binary=:all:"],
        ...["--python-version", TARGET.pythonVersion, "--implementation", TARGET.implementation],
        ...["--platform", targetPlatform(), "--platform", `manylinux2014_${machineArch()}`],
        ...(config.pipIndexUrl ? ["--index-url", config.pipIndexUrl] : []),
        ...["-r", reqFile],
        ...(constraints ? ["-c", conFile] : []),
      ];
      // Inherits the environment: the host's pip settings (proxy, CA bundle, pip.conf) apply.
      const res = await runTool(argv, {
        ...opts,
        timeoutMs: PIP_TIMEOUT_MS,
        installHint: "install Python 3 with pip on this host",
      });
      if (res.code !== 0) {
        const tail = res.timedOut
          ? `no result within ${PIP_TIMEOUT_MS / 60_000} min`
          : res.output.slice(-8).join("\n");
        const noWheel = /no matching distribution|could not find a version/i.test(tail);
        const missing = missingWheel(res.output);
        if (missing)
          throw new WheelhouseError(
            `no wheel of ${missing.requirement} for CPython ${TARGET.pythonVersion} manylinux ${machineArch()}` +
              (missing.versions
                ? ` (versions with a usable wheel or none at all on the index: ${missing.versions})`
                : "") +
              ` while collecting ${prefix} requirements`,
            "only binary wheels are used (building an sdist would run the repository's code on this host): " +
              `pin a version of ${missing.name} that publishes a wheel for CPython ${TARGET.pythonVersion} manylinux ${machineArch()} or pure-Python (py3-none-any), or publish one to your index (IAC_PIP_INDEX_URL)`,
          );
        throw new WheelhouseError(
          `pip could not download wheels for ${prefix} requirements (exit ${res.code}):\n${tail}`,
          noWheel
            ? "only binary wheels are used (building an sdist would run the repository's code on this host): " +
                `pin versions that publish a wheel for CPython ${TARGET.pythonVersion} manylinux ${machineArch()} or pure-Python (py3-none-any)`
            : "check network access to the package index from this host (IAC_PIP_INDEX_URL for a mirror)",
        );
      }
      await writeFile(path.join(tmp, ".complete"), new Date().toISOString());
      try {
        await rename(tmp, dir);
      } catch (err) {
        // Someone else finished the same download first: theirs is as good as ours.
        if (!existsSync(marker)) throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith(".whl")).sort();
  return { dir, files, key };
}

/**
 * The requirement pip could not satisfy with a wheel, from its output:
 * "Could not find a version that satisfies the requirement X==1.0 (from versions: a, b)".
 */
export function missingWheel(
  output: string[],
): { requirement: string; name: string; versions?: string } | undefined {
  for (const line of output) {
    const m =
      /could not find a version that satisfies the requirement (.+?) \(from versions: ([^)]*)\)/i.exec(
        line,
      );
    if (m) {
      const requirement = m[1]!.trim();
      const name = /^[A-Za-z0-9][A-Za-z0-9._-]*/.exec(requirement)?.[0] ?? requirement;
      const versions = m[2]!.trim();
      return { requirement, name, versions: versions === "none" ? undefined : versions };
    }
  }
  return undefined;
}

/** Wheels for the runner's venv (runner/requirements.txt) plus the build tools. */
export async function runnerWheelhouse(
  config: Pick<Config, "cacheDir" | "pipIndexUrl">,
  opts: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<Wheelhouse> {
  return ensureWheelhouse(config, "runner", await runnerRequirements(), opts);
}

/** runner/app_otel/: what goes into an app's venv for OpenTelemetry auto-instrumentation. */
export const APP_OTEL_DIR = path.join(RUNNER_DIR, "app_otel");

/** The app telemetry requirement lines (runner/app_otel/requirements.txt), comments removed. */
export async function appTelemetryRequirements(): Promise<string> {
  const text = await readFile(path.join(APP_OTEL_DIR, "requirements.txt"), "utf8");
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
  return lines.join("\n") + "\n";
}

/** The runner's requirement lines (runner/requirements.txt + BUILD_TOOLS), comments removed. */
export async function runnerRequirements(): Promise<string> {
  const text = await readFile(path.join(RUNNER_DIR, "requirements.txt"), "utf8");
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
  return [...lines, ...BUILD_TOOLS].join("\n") + "\n";
}

function inside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

interface Collected {
  origins: string[];
  warnings: string[];
  constraints: string[];
}

async function readRequirementsFile(
  tree: SourceTree,
  root: string,
  file: string,
  out: Collected,
  depth: number,
  asConstraints = false,
): Promise<string[]> {
  const rel = path.relative(root, file);
  if (depth > 5) throw new WheelhouseError(`requirements includes nest too deep at ${rel}`);
  if (!inside(root, file)) {
    throw new WheelhouseError(`requirements file ${rel} points outside the repository`);
  }
  out.origins.push(rel);
  const text = await tree.readText(file);
  if (text === undefined) throw new WheelhouseError(`requirements file ${rel} does not exist`);
  const raw = text.replace(/\\\r?\n/g, " ");
  const lines: string[] = [];
  for (const rawLine of raw.split(/\r?\n/)) {
    const line = rawLine.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    const include = /^(-r|--requirement|-c|--constraint)[\s=]+(\S+)$/.exec(line);
    if (include) {
      const target = path.resolve(path.dirname(file), include[2]!);
      const constraint = asConstraints || /^(-c|--constraint)$/.test(include[1]!);
      const got = await readRequirementsFile(tree, root, target, out, depth + 1, constraint);
      if (constraint) out.constraints.push(...got);
      else lines.push(...got);
      continue;
    }
    if (/^(-e|--editable)\b/.test(line)) {
      throw new WheelhouseError(
        `${rel}: editable requirement "${line}" is not supported in images`,
        "list the package by name, or let the project be installed (pyproject.toml)",
      );
    }
    if (line.startsWith("-")) {
      out.warnings.push(
        `${rel}: ignored option "${line}" (the image installs from a prepared wheelhouse; set IAC_PIP_INDEX_URL for a mirror)`,
      );
      continue;
    }
    if (/(^[./~]|:\/\/|^file:|\s@\s)/.test(line) || /^[^=<>!~;\s]*@/.test(line)) {
      throw new WheelhouseError(
        `${rel}: "${line}" is a URL, path or VCS reference`,
        "only index packages can be fetched as wheels offline: publish it to your index (IAC_PIP_INDEX_URL) or vendor it into the repository",
      );
    }
    lines.push(line);
  }
  return lines;
}

/** Where a project keeps its run-time requirements file, first match wins (never dev/test/docs). */
export const REQUIREMENTS_FILES = [
  "requirements.txt",
  "requirements-prod.txt",
  "requirements-production.txt",
  "requirements/prod.txt",
  "requirements/production.txt",
  "requirements/base.txt",
  "requirements/main.txt",
];

function checkIndexRequirement(where: string, d: string): void {
  if (/(:\/\/|\s@\s|^[./]|^file:)/.test(d) || /^[^=<>!~;\s[]*@/.test(d))
    throw new WheelhouseError(
      `${where}: "${d}" is a URL, path or VCS reference`,
      "only index packages can be fetched as wheels offline: publish it to your index (IAC_PIP_INDEX_URL) or vendor it into the repository",
    );
}

export interface AppRequirementsOptions {
  /** Reads a setup.py's literal declarations (in a container: image/setuppy.ts). */
  readSetupPy?: (text: string) => Promise<SetupPyFacts>;
  /** The project model when the caller has it (else read once per source). */
  project?: ProjectModel;
}

/**
 * What the app needs, statically (repo code never runs on the host):
 *   - the requirements file (REQUIREMENTS_FILES, with -r includes inside the repo; -c includes
 *     and a root constraints.txt become constraints);
 *   - what the project declares (detect/project.ts: [project] + dynamic, Poetry, flit,
 *     setup.cfg, and the extras the entrypoint asks for), and a literal setup.py read with
 *     `ast` in a container;
 *   - when the project itself is installed, its build requirements (downloaded, not installed).
 */
export async function appRequirements(
  source: Pick<Source, "dir"> & Partial<Pick<Source, "root">>,
  entrypoint: Pick<Entrypoint, "installProject" | "extras">,
  opts: AppRequirementsOptions = {},
): Promise<AppRequirements> {
  let project: ProjectModel;
  try {
    project = opts.project ?? (await readProject(source));
  } catch (err) {
    if (err instanceof ProjectFileError) throw new WheelhouseError(err.message, err.hint);
    throw err;
  }
  // Every read goes through the tree: a link out of the repository is refused, not followed.
  const tree = project.tree;
  const out: Collected = { origins: [], warnings: [], constraints: [] };
  const lines: string[] = [];
  let reqFile: string | undefined;
  for (const name of REQUIREMENTS_FILES) {
    const file = path.join(source.dir, name);
    if ((await tree.kind(file)) !== undefined) {
      reqFile = name;
      lines.push(...(await readRequirementsFile(tree, source.dir, file, out, 0)));
      break;
    }
  }
  const constraintsFile = path.join(source.dir, "constraints.txt");
  if ((await tree.kind(constraintsFile)) === "file" && !out.origins.includes("constraints.txt"))
    out.constraints.push(
      ...(await readRequirementsFile(tree, source.dir, constraintsFile, out, 0, true)),
    );

  let declared;
  try {
    declared = declaredDependencies(project, entrypoint.extras ?? []);
  } catch (err) {
    if (err instanceof ProjectFileError) throw new WheelhouseError(err.message, err.hint);
    throw err;
  }
  out.warnings.push(...declared.warnings);
  for (const d of declared.requirements) checkIndexRequirement(declared.origins.join(", "), d);
  lines.push(...declared.requirements);
  out.origins.push(...declared.origins);
  for (const f of declared.files)
    lines.push(...(await readRequirementsFile(tree, source.dir, path.join(source.dir, f), out, 0)));
  const build: string[] = entrypoint.installProject ? [...project.buildRequires] : [];

  if (declared.fromSetupPy) {
    const text = await tree.readText(path.join(source.dir, "setup.py"), 4 * 1024 * 1024);
    if (text !== undefined) {
      if (!opts.readSetupPy)
        throw new WheelhouseError(
          "setup.py declares the dependencies: reading it needs the build container",
        );
      const facts = await opts.readSetupPy(text);
      const addHint =
        "list the dependencies in requirements.txt (or setup.cfg [options] install_requires, " +
        "or pyproject.toml [project].dependencies); setup.py is never run to find them";
      if (facts.error)
        throw new WheelhouseError(`setup.py: ${facts.error} (read with Python's ast)`, addHint);
      if (facts.install_requires === null) {
        if (!reqFile)
          throw new WheelhouseError(
            "setup.py: install_requires is not a literal (it is computed when setup.py runs), " +
              "so it cannot be known without running the repository's code",
            addHint,
          );
        out.warnings.push(
          `setup.py: install_requires is not a literal; using ${reqFile} for the dependencies`,
        );
      } else {
        for (const d of facts.install_requires)
          checkIndexRequirement("setup.py install_requires", d);
        lines.push(...facts.install_requires);
        if (facts.install_requires.length) out.origins.push("setup.py install_requires (ast)");
      }
      for (const extra of entrypoint.extras ?? []) {
        const e = facts.extras_require?.[extra];
        if (e) lines.push(...e);
        else
          out.warnings.push(`setup.py: extra [${extra}] is not a literal entry of extras_require`);
      }
      if (entrypoint.installProject && facts.setup_requires) build.push(...facts.setup_requires);
    }
  }
  for (const d of build) checkIndexRequirement("pyproject.toml [build-system].requires", d);
  const join = (xs: string[]) => (xs.length ? [...new Set(xs)].join("\n") + "\n" : "");
  return {
    text: join(lines),
    buildText: join(build),
    constraints: join(out.constraints),
    origins: out.origins,
    warnings: out.warnings,
  };
}
