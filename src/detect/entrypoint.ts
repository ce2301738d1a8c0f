// Source -> Entrypoint: how to run the repo's main(), decided statically (repo code never runs
// on the host). Rules, first match wins (the order is fixed; within a rule, file order decides):
//   override-repos-file          `entrypoint:` of the service in the repos file
//   override-repos-file-process  `entrypoint: {process: NAME}`: that Procfile process type
//   override-repos-file-label    `labels: {io.iac.entrypoint: ...}` in the repos file
//   override-dockerfile-label    LABEL io.iac.entrypoint=... in the repo's Dockerfile (build: dockerfile)
//   override-pyproject           [tool.iac] entrypoint in pyproject.toml
//   dockerfile-entrypoint        ENTRYPOINT / CMD in exec form in the repo's Dockerfile (build: dockerfile)
//   procfile                     Procfile: web, else worker, else the first process type
//   root-__main__.py             __main__.py at the root                  -> python __main__.py
//   root-main.py                 main.py at the root (runs itself)        -> python main.py
//   root-main.py-main-function   main.py defines main() but never calls it -> import it, call main()
//   pyproject-project-scripts    first [project.scripts] entry            -> the console script
//   pyproject-poetry-scripts     first [tool.poetry.scripts] entry        -> the console script
//   setup.cfg-console-scripts    first [options.entry_points] console_scripts line
//   package-__main__             {pkg}/__main__.py                        -> python -m pkg
//   src-package-__main__         src/{pkg}/__main__.py                    -> python -m pkg (installed)
//   root-executable-main         an executable file `main` at the root    -> ./main
// Otherwise EntrypointError lists every candidate considered and how to override.
import path from "node:path";
import { IacError } from "../kernel/errors.js";
import type {
  BuildMode,
  Entrypoint,
  EntrypointKind,
  ServiceSpec,
  Source,
} from "../kernel/types.js";
import {
  DockerfileError,
  ENTRYPOINT_LABEL,
  execArgv,
  labelArgv,
  readDockerfile,
} from "./dockerfile.js";
import { ProcfileError, parseProcfile, pickProcess, splitCommand } from "./procfile.js";
import { type ProjectModel, ProjectFileError, readProject } from "./project.js";
import type { SourceTree } from "./tree.js";
export { parseIni } from "./project.js";

export class EntrypointError extends IacError {
  override name = "EntrypointError";
  constructor(
    message: string,
    /** Every candidate considered, with why it did not apply. */
    readonly candidates: string[] = [],
    hint: string = OVERRIDE_HINT,
  ) {
    super(message, hint);
  }
}

const OVERRIDE_HINT =
  'set `entrypoint:` for the service in the repos file (e.g. entrypoint: "python -m app"), ' +
  'or add [tool.iac] entrypoint = ["python", "-m", "app"] to pyproject.toml';

const MAX_TEXT = 4 * 1024 * 1024;
const IDENT = "[A-Za-z_][A-Za-z0-9_]*";
const DOTTED = `${IDENT}(?:\\.${IDENT})*`;
/** `module:attr` (attr may be dotted), optionally followed by `[extras]`. */
const OBJECT_REF_RE = new RegExp(
  `^\\s*(${DOTTED})\\s*:\\s*(${DOTTED})\\s*(?:\\[([^\\]]*)\\])?\\s*$`,
);
const SCRIPT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const PKG_NAME_RE = new RegExp(`^${IDENT}$`);

type Toml = Record<string, unknown>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Python source scanning (static)

/**
 * Blanks comments and the contents of string literals (docstrings included) so that `def main(`
 * or `main()` inside them is not mistaken for code; a string that is exactly "__main__" is kept
 * so the guard stays visible. Newlines are preserved, so line structure and indentation survive.
 */
export function stripCommentsAndStrings(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === '"' || c === "'") {
      // prefix letters (r, b, f, u...) were already copied; they do not change where strings end
      const triple = src.startsWith(c.repeat(3), i);
      const quote = triple ? c.repeat(3) : c;
      const prefix =
        /(?:^|[^A-Za-z0-9_])([rRbBfFuU]{1,2})$/.exec(src.slice(Math.max(0, i - 3), i))?.[1] ?? "";
      const raw = /[rR]/.test(prefix);
      let j = i + quote.length;
      while (j < src.length) {
        if (src[j] === "\\" && !raw) {
          j += 2;
          continue;
        }
        if (src.startsWith(quote, j)) break;
        if (!triple && src[j] === "\n") break; // unterminated single-line string
        j++;
      }
      const end = Math.min(src.length, j + quote.length);
      const text = src.slice(i, end);
      // Keep the quotes; blank the contents except "__main__" (the guard must stay visible).
      const inner = text.slice(quote.length, text.length - quote.length);
      out +=
        inner === "__main__"
          ? text
          : quote + inner.replace(/[^\n]/g, " ") + text.slice(quote.length + inner.length);
      i = end;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

export interface MainPyFacts {
  definesMain: boolean;
  asyncMain: boolean;
  /** main() is called under `if __name__ == "__main__":` or at the top level. */
  callsMain: boolean;
  hasMainGuard: boolean;
}

const GUARD_RE =
  /^if\s+(?:__name__\s*==\s*(['"])__main__\1|(['"])__main__\2\s*==\s*__name__)\s*:(.*)$/;
const CALL_MAIN_RE = /(?<![\w.])main\s*\(/;

export function analyzeMainPy(src: string): MainPyFacts {
  const lines = stripCommentsAndStrings(src.replace(/\r\n?/g, "\n")).split("\n");
  let definesMain = false;
  let asyncMain = false;
  let callsMain = false;
  let hasMainGuard = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "" || /^\s/.test(line)) continue; // only top-level statements
    const def = /^(async\s+)?def\s+main\s*\(/.exec(line);
    if (def) {
      definesMain = true;
      asyncMain = Boolean(def[1]);
      continue;
    }
    if (/^(?:def|class|@|import|from)\b/.test(line) || line.startsWith("@")) continue;
    const guard = GUARD_RE.exec(line);
    if (guard) {
      hasMainGuard = true;
      const body = [guard[3] ?? ""];
      for (let j = i + 1; j < lines.length; j++) {
        const l = lines[j]!;
        if (l.trim() === "" || /^\s/.test(l)) body.push(l);
        else break;
      }
      if (body.some((l) => CALL_MAIN_RE.test(l))) callsMain = true;
      continue;
    }
    if (CALL_MAIN_RE.test(line)) callsMain = true;
  }
  return { definesMain, asyncMain, callsMain, hasMainGuard };
}

// ---------------------------------------------------------------------------------------------
// detection

interface Scan {
  /** Every read of the repository goes through it (links resolved inside the root only). */
  tree: SourceTree;
  source: Source;
  dir: string;
  /** pyproject.toml / setup.cfg, parsed once and shared with the image build. */
  project: ProjectModel;
  pyproject?: Toml;
  considered: string[];
}

function argvFrom(value: unknown, where: string): string[] {
  let argv: string[] | undefined;
  if (typeof value === "string") argv = value.trim().split(/\s+/).filter(Boolean);
  else if (Array.isArray(value) && value.every((v) => typeof v === "string"))
    argv = value as string[];
  if (!argv || argv.length === 0 || argv.some((a) => a === "" || a.includes("\0")))
    throw new EntrypointError(
      `${where}: entrypoint must be a non-empty string or list of non-empty strings`,
    );
  return argv;
}

function installable(scan: Scan): boolean {
  return scan.project.installable;
}

/** An override's kind follows from its argv; local files it names must exist. */
async function fromOverride(
  scan: Scan,
  argv: string[],
  rule: string,
  where: string,
): Promise<Entrypoint> {
  const [cmd, a1, a2] = argv;
  let kind: EntrypointKind;
  if (cmd === "python" || cmd === "python3") {
    if (a1 === "-m" && a2) kind = "python-module";
    else if (a1 === "-c") kind = "python-main-function";
    else kind = "python-file";
    if (a1 && a1.endsWith(".py") && (await scan.tree.kind(path.join(scan.dir, a1))) !== "file")
      throw new EntrypointError(
        `${where}: entrypoint runs ${a1}, which does not exist in the source`,
      );
  } else if (cmd!.startsWith("./") || cmd!.includes("/")) {
    kind = "executable";
    if ((await scan.tree.kind(path.join(scan.dir, cmd!))) !== "file")
      throw new EntrypointError(
        `${where}: entrypoint runs ${cmd}, which does not exist in the source`,
      );
  } else kind = "console-script";
  const installProject =
    (kind === "console-script" || kind === "python-module") && installable(scan);
  return { kind, argv, rule, installProject };
}

/** Folders a module may live in: flat, src/, and setuptools/poetry package dirs from pyproject. */
function moduleBases(scan: Scan): string[] {
  const bases = ["", "src"];
  const tool = scan.pyproject?.tool as Toml | undefined;
  const pkgDir = (tool?.setuptools as Toml | undefined)?.["package-dir"];
  if (isRecord(pkgDir) && typeof pkgDir[""] === "string") bases.push(pkgDir[""]);
  const poetryPkgs = (tool?.poetry as Toml | undefined)?.packages;
  if (Array.isArray(poetryPkgs))
    for (const p of poetryPkgs) if (isRecord(p) && typeof p.from === "string") bases.push(p.from);
  return [
    ...new Set(
      bases.map((b) => b.replace(/^\.\/|\/+$/g, "")).filter((b) => !b.split("/").includes("..")),
    ),
  ];
}

async function findModule(
  scan: Scan,
  module: string,
): Promise<{ found: boolean; looked: string[] }> {
  const rel = module.split(".").join("/");
  const looked: string[] = [];
  for (const base of moduleBases(scan)) {
    const prefix = base ? `${base}/` : "";
    for (const cand of [`${prefix}${rel}.py`, `${prefix}${rel}/__init__.py`, `${prefix}${rel}/`]) {
      looked.push(cand);
      const k = await scan.tree.kind(path.join(scan.dir, cand));
      if (cand.endsWith("/") ? k === "dir" : k === "file") return { found: true, looked };
    }
  }
  return { found: false, looked };
}

async function consoleScript(
  scan: Scan,
  name: string,
  value: unknown,
  where: string,
  rule: string,
): Promise<Entrypoint> {
  if (!SCRIPT_NAME_RE.test(name))
    throw new EntrypointError(`${where}: script name '${name}' is not a valid command name`);
  if (typeof value !== "string")
    throw new EntrypointError(`${where}: script '${name}' must be a "module:attr" string`);
  const m = OBJECT_REF_RE.exec(value);
  if (!m)
    throw new EntrypointError(
      `${where}: script '${name}' = ${JSON.stringify(value)} is not of the form module:attr (e.g. "mypkg.cli:main")`,
    );
  const { found, looked } = await findModule(scan, m[1]!);
  if (!found)
    throw new EntrypointError(
      `${where}: script '${name}' refers to module '${m[1]}', which is not in the source (looked for ${looked.join(", ")})`,
    );
  const extras = (m[3] ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  return {
    kind: "console-script",
    argv: [name],
    rule,
    installProject: true,
    ...(extras.length ? { extras } : {}),
  };
}

function firstEntry(table: Record<string, unknown>): [string, unknown] | undefined {
  // smol-toml builds tables in file order; JS keeps string keys in insertion order.
  return Object.entries(table)[0];
}

async function ruleRootFiles(scan: Scan): Promise<Entrypoint | undefined> {
  if ((await scan.tree.kind(path.join(scan.dir, "__main__.py"))) === "file")
    return {
      kind: "python-file",
      argv: ["python", "__main__.py"],
      rule: "root-__main__.py",
      installProject: false,
    };
  scan.considered.push("__main__.py at the root: absent");
  const src = await scan.tree.readText(path.join(scan.dir, "main.py"), MAX_TEXT);
  if (src === undefined) {
    scan.considered.push("main.py at the root: absent");
    return undefined;
  }
  const facts = analyzeMainPy(src);
  if (facts.definesMain && !facts.callsMain) {
    const call = facts.asyncMain
      ? "import asyncio, sys, main; sys.exit(asyncio.run(main.main()))"
      : "import sys, main; sys.exit(main.main())";
    return {
      kind: "python-main-function",
      argv: ["python", "-c", call],
      rule: "root-main.py-main-function",
      installProject: false,
    };
  }
  return {
    kind: "python-file",
    argv: ["python", "main.py"],
    rule: "root-main.py",
    installProject: false,
  };
}

async function ruleScripts(scan: Scan): Promise<Entrypoint | undefined> {
  const p = scan.pyproject;
  if (!p)
    scan.considered.push(
      "pyproject.toml [project.scripts] / [tool.poetry.scripts]: no pyproject.toml",
    );
  else {
    const scripts = isRecord(p.project) ? p.project.scripts : undefined;
    const first = isRecord(scripts) ? firstEntry(scripts) : undefined;
    if (first)
      return consoleScript(
        scan,
        first[0],
        first[1],
        "pyproject.toml [project.scripts]",
        "pyproject-project-scripts",
      );
    scan.considered.push("pyproject.toml [project.scripts]: absent or empty");
    const poetry = (p.tool as Toml | undefined)?.poetry as Toml | undefined;
    const pscripts = isRecord(poetry) ? poetry.scripts : undefined;
    const pfirst = isRecord(pscripts) ? firstEntry(pscripts) : undefined;
    if (pfirst) {
      const name = pfirst[0];
      let value = pfirst[1];
      if (isRecord(value)) {
        if (value.type === "file" || value.reference !== undefined)
          throw new EntrypointError(
            `pyproject.toml [tool.poetry.scripts]: script '${name}' is a file script; only "module:attr" scripts are supported`,
          );
        value = value.callable;
      }
      return consoleScript(
        scan,
        name,
        value,
        "pyproject.toml [tool.poetry.scripts]",
        "pyproject-poetry-scripts",
      );
    }
    scan.considered.push("pyproject.toml [tool.poetry.scripts]: absent or empty");
  }
  const cfg = scan.project.setupCfg;
  if (cfg === undefined) {
    scan.considered.push("setup.cfg [options.entry_points] console_scripts: no setup.cfg");
    return undefined;
  }
  const value = cfg.get("options.entry_points")?.get("console_scripts");
  const line = value
    ?.split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#"));
  if (!line) {
    scan.considered.push("setup.cfg [options.entry_points] console_scripts: absent or empty");
    return undefined;
  }
  const eq = line.indexOf("=");
  const where = "setup.cfg [options.entry_points] console_scripts";
  if (eq < 0)
    throw new EntrypointError(`${where}: '${line}' is not of the form name = module:attr`);
  return consoleScript(
    scan,
    line.slice(0, eq).trim(),
    line.slice(eq + 1).trim(),
    where,
    "setup.cfg-console-scripts",
  );
}

function projectName(p: Toml | undefined): string | undefined {
  const n =
    (isRecord(p?.project) ? p.project.name : undefined) ??
    ((p?.tool as Toml | undefined)?.poetry as Toml | undefined)?.name;
  return typeof n === "string" ? n.toLowerCase().replace(/[-.]+/g, "_") : undefined;
}

async function rulePackageMain(scan: Scan): Promise<Entrypoint | undefined> {
  const found: { pkg: string; src: boolean }[] = [];
  for (const base of ["", "src"]) {
    const dir = path.join(scan.dir, base);
    if ((await scan.tree.kind(dir)) !== "dir") continue;
    const names = await scan.tree.list(dir); // sorted: fixed order, independent of the filesystem
    for (const name of names) {
      if (!PKG_NAME_RE.test(name)) continue;
      if ((await scan.tree.kind(path.join(dir, name, "__main__.py"))) === "file")
        found.push({ pkg: name, src: base === "src" });
    }
  }
  if (found.length === 0) {
    scan.considered.push("{package}/__main__.py or src/{package}/__main__.py: none");
    return undefined;
  }
  const want = projectName(scan.pyproject);
  const pick = found.find((f) => f.pkg.toLowerCase() === want) ?? found[0]!;
  return {
    kind: "python-module",
    argv: ["python", "-m", pick.pkg],
    rule: pick.src ? "src-package-__main__" : "package-__main__",
    installProject: pick.src,
  };
}

async function ruleExecutable(scan: Scan): Promise<Entrypoint | undefined> {
  const p = path.join(scan.dir, "main");
  let mode: number | undefined;
  try {
    const st = await scan.tree.stat(p);
    if (st?.isFile()) mode = st.mode;
  } catch {
    mode = undefined;
  }
  if (mode === undefined) {
    scan.considered.push("an executable file 'main' at the root: absent");
    return undefined;
  }
  if ((mode & 0o111) === 0) {
    scan.considered.push(
      "an executable file 'main' at the root: present but not executable (git update-index --chmod=+x main)",
    );
    return undefined;
  }
  return {
    kind: "executable",
    argv: ["./main"],
    rule: "root-executable-main",
    installProject: false,
  };
}

/** What the repos file says about a service that detection honours. */
export type DetectOverrides = Pick<ServiceSpec, "entrypoint" | "process" | "build" | "labels">;

/** The repo's own Dockerfile, for `build: dockerfile`. */
export const OWN_DOCKERFILE = "Dockerfile";

/** Build mode: the repos file's `build:`, else [tool.iac] build, else the generated image. */
function buildMode(scan: Scan, spec: DetectOverrides): BuildMode {
  if (spec.build) return spec.build;
  const iac = (scan.pyproject?.tool as Toml | undefined)?.iac;
  const b = isRecord(iac) ? iac.build : undefined;
  if (b === undefined) return "default";
  if (b === "dockerfile" || b === "default") return b;
  throw new EntrypointError(
    `pyproject.toml [tool.iac]: build = ${JSON.stringify(b)} is not "dockerfile" or "default"`,
    [],
    'set [tool.iac] build = "dockerfile" to build the repository\'s own Dockerfile, or remove it',
  );
}

/** Runs a typed reader error as an EntrypointError (same message and hint). */
async function orEntrypointError<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DockerfileError || err instanceof ProcfileError)
      throw new EntrypointError(err.message, [], err.hint);
    throw err;
  }
}

/** An argv that comes from the repo's Dockerfile runs in the image it builds: not checked here. */
function fromImage(argv: string[], rule: string, dockerfile: string): Entrypoint {
  const [cmd, a1, a2] = argv;
  const kind: EntrypointKind =
    cmd === "python" || cmd === "python3"
      ? a1 === "-m" && a2
        ? "python-module"
        : a1 === "-c"
          ? "python-main-function"
          : "python-file"
      : cmd!.includes("/")
        ? "executable"
        : "console-script";
  return { kind, argv, rule, installProject: false, dockerfile };
}

async function ruleProcfile(scan: Scan, wanted?: string): Promise<Entrypoint | undefined> {
  const text = await scan.tree.readText(path.join(scan.dir, "Procfile"), MAX_TEXT);
  if (text === undefined) {
    if (wanted !== undefined)
      throw new EntrypointError(
        `entrypoint: {process: ${wanted}} but the source has no Procfile`,
        [],
        "add a Procfile (`web: python -m app`), or set `entrypoint:` to the argv to run",
      );
    scan.considered.push("Procfile: absent");
    return undefined;
  }
  const pick = await orEntrypointError(() => pickProcess(parseProcfile(text), wanted));
  if (!pick) {
    scan.considered.push("Procfile: no process type other than release");
    return undefined;
  }
  const where = `Procfile:${pick.line} (${pick.type})`;
  const argv = await orEntrypointError(() => splitCommand(pick.command, where));
  const rule = wanted !== undefined ? "override-repos-file-process" : "procfile";
  return fromOverride(scan, argv, rule, where);
}

/**
 * Finds how to run the source's main(). `overrides` is what the repos file says (`entrypoint:`
 * already split into argv, `process`, `build`, `labels`); a plain argv is the `entrypoint:`.
 * Throws EntrypointError listing every candidate when nothing matches.
 */
export async function detectEntrypoint(
  source: Source,
  overrides?: string[] | DetectOverrides,
): Promise<Entrypoint> {
  const spec: DetectOverrides = Array.isArray(overrides)
    ? { entrypoint: overrides }
    : (overrides ?? {});
  let project: ProjectModel;
  try {
    project = await readProject(source);
  } catch (err) {
    if (err instanceof ProjectFileError) throw new EntrypointError(err.message, [], err.hint);
    throw err;
  }
  const scan: Scan = { source, dir: source.dir, considered: [], tree: project.tree, project };
  if ((await scan.tree.kind(source.dir)) !== "dir")
    throw new EntrypointError(`source folder ${source.dir} does not exist`);
  scan.pyproject = project.pyproject;
  const mode = buildMode(scan, spec);
  const found = await detectRules(scan, spec, mode);
  return mode === "dockerfile"
    ? { ...found, installProject: false, dockerfile: OWN_DOCKERFILE }
    : found;
}

async function detectRules(
  scan: Scan,
  spec: DetectOverrides,
  mode: BuildMode,
): Promise<Entrypoint> {
  const { source } = scan;
  // The repo's Dockerfile is read (never built) first: a build from it needs one that parses.
  let docker: ReturnType<typeof readDockerfile> | undefined;
  if (mode === "dockerfile") {
    const text = await scan.tree.readText(path.join(scan.dir, OWN_DOCKERFILE), MAX_TEXT);
    if (text === undefined)
      throw new EntrypointError(
        `build: dockerfile, but there is no ${OWN_DOCKERFILE} in ${path.relative(source.root, source.dir) || "the repository root"}`,
        [],
        "add a Dockerfile, or remove `build: dockerfile` (repos file) / [tool.iac] build",
      );
    docker = await orEntrypointError(() => readDockerfile(text));
  }
  if (spec.entrypoint && spec.entrypoint.length > 0) {
    const argv = argvFrom(spec.entrypoint, "repos file");
    return docker
      ? fromImage(argv, "override-repos-file", OWN_DOCKERFILE)
      : fromOverride(scan, argv, "override-repos-file", "repos file");
  }
  if (spec.process !== undefined) return (await ruleProcfile(scan, spec.process))!;
  const repoLabel = spec.labels?.[ENTRYPOINT_LABEL];
  if (repoLabel !== undefined) {
    const where = `repos file labels.${ENTRYPOINT_LABEL}`;
    const argv = await orEntrypointError(() => labelArgv(repoLabel, where));
    return docker
      ? fromImage(argv, "override-repos-file-label", OWN_DOCKERFILE)
      : fromOverride(scan, argv, "override-repos-file-label", where);
  }
  if (docker?.label !== undefined) {
    const argv = await orEntrypointError(() => labelArgv(docker.label!, `Dockerfile LABEL`));
    return fromImage(argv, "override-dockerfile-label", OWN_DOCKERFILE);
  }
  if (docker) scan.considered.push(`Dockerfile LABEL ${ENTRYPOINT_LABEL}: not set`);
  const iac = (scan.pyproject?.tool as Toml | undefined)?.iac;
  if (isRecord(iac) && iac.entrypoint !== undefined) {
    const where = "pyproject.toml [tool.iac]";
    const argv = argvFrom(iac.entrypoint, where);
    return docker
      ? fromImage(argv, "override-pyproject", OWN_DOCKERFILE)
      : fromOverride(scan, argv, "override-pyproject", where);
  }
  scan.considered.push(
    scan.pyproject ? "pyproject.toml [tool.iac] entrypoint: not set" : "pyproject.toml: absent",
  );
  if (docker) {
    const { argv, why } = execArgv(docker);
    if (argv) return fromImage(argv, "dockerfile-entrypoint", OWN_DOCKERFILE);
    scan.considered.push(why);
  }
  // Order matters: the Procfile is the repo's own statement of what runs, so it comes before
  // any guess from the file layout.
  for (const rule of [ruleProcfile, ruleRootFiles, ruleScripts, rulePackageMain, ruleExecutable]) {
    const found = await rule(scan);
    if (found) return found;
  }
  const where = path.relative(source.root, source.dir) || "the repository root";
  throw new EntrypointError(
    `no entrypoint found in ${where}; looked for:\n` +
      scan.considered.map((c) => `  - ${c}`).join("\n"),
    scan.considered,
  );
}
