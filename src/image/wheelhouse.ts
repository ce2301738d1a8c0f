// Offline image builds: containers here cannot reach PyPI, so the host's pip downloads
// wheels (never sdists: building one would run the repository's code on this host) into a
// cache, and the image installs from them with `pip install --no-index --find-links`.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import type { Config } from "../kernel/config.js";
import { IacError } from "../kernel/errors.js";
import type { Entrypoint, Source } from "../kernel/types.js";
import { SourceTree } from "../detect/tree.js";
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
  opts: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<Wheelhouse> {
  const key = sha([requirements, targetPlatform(), TARGET.pythonVersion, config.pipIndexUrl ?? ""]);
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
      const argv = [
        hostPython(),
        ...["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input"],
        ...["--dest", tmp, "--only-binary=:all:"],
        ...["--python-version", TARGET.pythonVersion, "--implementation", TARGET.implementation],
        ...["--platform", targetPlatform(), "--platform", `manylinux2014_${machineArch()}`],
        ...(config.pipIndexUrl ? ["--index-url", config.pipIndexUrl] : []),
        ...["-r", reqFile],
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

/** Wheels for the runner's venv (runner/requirements.txt) plus the build tools. */
export async function runnerWheelhouse(
  config: Pick<Config, "cacheDir" | "pipIndexUrl">,
  opts: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<Wheelhouse> {
  return ensureWheelhouse(config, "runner", await runnerRequirements(), opts);
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

async function readRequirementsFile(
  tree: SourceTree,
  root: string,
  file: string,
  out: AppRequirements,
  depth: number,
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
      lines.push(...(await readRequirementsFile(tree, root, target, out, depth + 1)));
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

/**
 * What the app needs installed: requirements.txt (with -r/-c includes inside the repo) and,
 * when the project itself is installed, its [project].dependencies and build requirements
 * from pyproject.toml. Dependencies a setup.py computes at build time cannot be known
 * without running it; list them in requirements.txt.
 */
export async function appRequirements(
  source: Pick<Source, "dir"> & Partial<Pick<Source, "root">>,
  entrypoint: Pick<Entrypoint, "installProject">,
): Promise<AppRequirements> {
  const out: AppRequirements = { text: "", origins: [], warnings: [] };
  // Every read goes through the tree: a link out of the repository is refused, not followed.
  const tree = new SourceTree(source.root ?? source.dir);
  const lines: string[] = [];
  const req = path.join(source.dir, "requirements.txt");
  if ((await tree.kind(req)) !== undefined)
    lines.push(...(await readRequirementsFile(tree, source.dir, req, out, 0)));
  const pyproject = path.join(source.dir, "pyproject.toml");
  const pyText = entrypoint.installProject ? await tree.readText(pyproject) : undefined;
  if (pyText !== undefined) {
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(pyText) as Record<string, unknown>;
    } catch (err) {
      throw new WheelhouseError(`pyproject.toml is not valid TOML: ${(err as Error).message}`);
    }
    const project = (doc.project ?? {}) as { dependencies?: unknown };
    const build = (doc["build-system"] ?? {}) as { requires?: unknown };
    const strings = (v: unknown) =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
    const deps = [...strings(project.dependencies), ...strings(build.requires)];
    for (const d of deps) {
      if (/(:\/\/|\s@\s|^[./])/.test(d)) {
        throw new WheelhouseError(
          `pyproject.toml: "${d}" is a URL or path reference`,
          "only index packages can be fetched as wheels offline",
        );
      }
    }
    if (deps.length) out.origins.push("pyproject.toml");
    lines.push(...deps);
  }
  out.text = lines.length ? [...new Set(lines)].join("\n") + "\n" : "";
  return out;
}
