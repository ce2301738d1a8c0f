// The repository's Python project, read once (issue 15): pyproject.toml and setup.cfg parsed
// into one model that detection (entrypoint.ts), the wheelhouse (image/wheelhouse.ts) and the
// image build (image/build.ts) share. Static only: setup.py is never executed or parsed on the
// host (image/setuppy.ts reads a literal one with Python's `ast` in a throwaway container).
// Every read goes through the SourceTree (links resolved inside the repository only).
import path from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { IacError } from "../kernel/errors.js";
import type { Source } from "../kernel/types.js";
import { SourceTree } from "./tree.js";

export type Toml = Record<string, unknown>;
export type Ini = Map<string, Map<string, string>>;

const MAX_TEXT = 4 * 1024 * 1024;

export class ProjectFileError extends IacError {
  override name = "ProjectFileError";
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/**
 * A minimal INI reader with configparser's defaults (the format setuptools reads): `[section]`
 * headers, `key = value` or `key: value`, keys lowercased, indented lines continue the previous
 * value, whole-line `#`/`;` comments. Written here rather than adding a dependency because we
 * need multi-line values and must keep file order, which a generic parser may not.
 */
export function parseIni(text: string): Ini {
  const sections: Ini = new Map();
  let current: Map<string, string> | undefined;
  let lastKey: string | undefined;
  for (const rawLine of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (/^\s*[#;]/.test(rawLine)) continue;
    const header = /^\[([^\]]+)\]\s*$/.exec(rawLine);
    if (header) {
      const name = header[1]!.trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = undefined;
      continue;
    }
    if (!current) continue;
    if (/^\s/.test(rawLine) || rawLine === "") {
      if (lastKey !== undefined && rawLine.trim() !== "")
        current.set(lastKey, `${current.get(lastKey)}\n${rawLine.trim()}`);
      continue;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(rawLine);
    if (kv) {
      lastKey = kv[1]!.trim().toLowerCase();
      current.set(lastKey, kv[2]!.trim());
    }
  }
  return sections;
}

/** The lines of a setup.cfg list value (dangling list), comments and blanks dropped. */
export function iniList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
}

export interface ProjectModel {
  tree: SourceTree;
  /** Absolute folder of the project (the slug's subdir applied). */
  dir: string;
  pyproject?: Toml;
  setupCfg?: Ini;
  /** A setup.py exists (never executed or parsed on the host). */
  hasSetupPy: boolean;
  /** Distribution name: [project].name, [tool.poetry].name, setup.cfg [metadata] name. */
  name?: string;
  /** [build-system].build-backend; undefined = setuptools' legacy path (setup.py/setup.cfg). */
  backend?: string;
  /** What building the project needs ([build-system].requires, or the legacy default). */
  buildRequires: string[];
  /** pip can install the project (it declares a build: pyproject, setup.py or setup.cfg). */
  installable: boolean;
}

async function loadToml(tree: SourceTree, file: string): Promise<Toml | undefined> {
  const text = await tree.readText(file, MAX_TEXT);
  if (text === undefined) return undefined;
  try {
    return parseToml(text) as Toml;
  } catch (err) {
    const at = err instanceof TomlError ? `:${err.line}:${err.column}` : "";
    const first = (err as Error).message.split("\n")[0];
    throw new ProjectFileError(
      `pyproject.toml${at}: invalid TOML: ${first}`,
      "fix pyproject.toml (it is also needed to build the image)",
    );
  }
}

/** Setuptools' legacy build requirements (what pip uses for a project without [build-system]). */
export const LEGACY_BUILD_REQUIRES = ["setuptools>=40.8.0", "wheel"];

async function load(source: Pick<Source, "dir"> & Partial<Pick<Source, "root">>) {
  const tree = new SourceTree(source.root ?? source.dir);
  const dir = source.dir;
  const pyproject = await loadToml(tree, path.join(dir, "pyproject.toml"));
  const cfgText = await tree.readText(path.join(dir, "setup.cfg"), MAX_TEXT);
  const setupCfg = cfgText === undefined ? undefined : parseIni(cfgText);
  const hasSetupPy = (await tree.kind(path.join(dir, "setup.py"))) === "file";
  const project = isRecord(pyproject?.project) ? pyproject.project : undefined;
  const tool = isRecord(pyproject?.tool) ? pyproject.tool : undefined;
  const poetry = isRecord(tool?.poetry) ? tool.poetry : undefined;
  const flitMeta = isRecord(tool?.flit) && isRecord(tool.flit.metadata) ? tool.flit.metadata : {};
  const rawName =
    (typeof project?.name === "string" ? project.name : undefined) ??
    (typeof poetry?.name === "string" ? poetry.name : undefined) ??
    (typeof flitMeta["dist-name"] === "string" ? flitMeta["dist-name"] : undefined) ??
    (typeof flitMeta.module === "string" ? flitMeta.module : undefined) ??
    setupCfg?.get("metadata")?.get("name");
  const build = isRecord(pyproject?.["build-system"]) ? pyproject["build-system"] : undefined;
  const backend = typeof build?.["build-backend"] === "string" ? build["build-backend"] : undefined;
  const setupRequires = iniList(setupCfg?.get("options")?.get("setup_requires"));
  const buildRequires = build
    ? strings(build.requires)
    : hasSetupPy || setupCfg
      ? [...LEGACY_BUILD_REQUIRES, ...setupRequires]
      : [];
  const model: ProjectModel = {
    tree,
    dir,
    pyproject,
    setupCfg,
    hasSetupPy,
    name: rawName?.trim() || undefined,
    backend,
    buildRequires,
    installable: Boolean(project || build || poetry || hasSetupPy || setupCfg),
  };
  return model;
}

const memo = new WeakMap<object, Promise<ProjectModel>>();

/**
 * The project of a fetched source, read once per Source object: detection and the image
 * build of the same deploy share it.
 */
export function readProject(
  source: Pick<Source, "dir"> & Partial<Pick<Source, "root">>,
): Promise<ProjectModel> {
  let p = memo.get(source);
  if (!p) {
    p = load(source);
    memo.set(source, p);
    // A failed read is not cached: the next caller gets the error again, freshly.
    p.catch(() => memo.delete(source));
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// dependencies (what the project declares it needs at run time)

export interface DeclaredDependencies {
  /** PEP 508 requirement strings. */
  requirements: string[];
  /** Requirement files the declaration points to (dynamic dependencies), relative to dir. */
  files: string[];
  /** Where they came from, for messages (e.g. "pyproject.toml [project].dependencies"). */
  origins: string[];
  /** Only a setup.py declares them: read it with `ast` in a container (image/setuppy.ts). */
  fromSetupPy: boolean;
  warnings: string[];
}

/** Poetry's version constraint -> a PEP 440 specifier ("" = any). */
export function poetryConstraint(spec: string): string {
  const parts = spec.split(",").map((s) => s.trim());
  const out: string[] = [];
  for (const part of parts) {
    if (part === "" || part === "*") continue;
    const caret = /^\^\s*(\d+(?:\.\d+)*)(.*)$/.exec(part);
    const tilde = /^~(?!=)\s*(\d+(?:\.\d+)*)(.*)$/.exec(part);
    if (caret) {
      const nums = caret[1]!.split(".").map(Number);
      const i = nums.findIndex((n) => n !== 0);
      const idx = i < 0 ? nums.length - 1 : i;
      const upper = nums.slice(0, idx + 1);
      upper[idx]! += 1;
      out.push(`>=${caret[1]}${caret[2]}`, `<${upper.join(".")}`);
    } else if (tilde) {
      const nums = tilde[1]!.split(".").map(Number);
      const upper = nums.length > 1 ? nums.slice(0, 2) : nums.slice(0, 1);
      upper[upper.length - 1]! += 1;
      out.push(`>=${tilde[1]}${tilde[2]}`, `<${upper.join(".")}`);
    } else if (/^\d/.test(part)) out.push(`==${part}`);
    else out.push(part.replace(/\s+/g, ""));
  }
  return out.join(",");
}

function poetryRequirement(name: string, value: unknown, where: string): string | undefined {
  if (typeof value === "string") return `${name}${poetryConstraint(value)}`;
  if (Array.isArray(value)) {
    // multiple-constraint dependencies: each has its own markers; keep them all
    const alts = value
      .map((v) => poetryRequirement(name, v, where))
      .filter((v): v is string => Boolean(v));
    return alts.length ? alts.join("\n") : undefined;
  }
  if (!isRecord(value)) return undefined;
  for (const k of ["git", "path", "url", "file"])
    if (value[k] !== undefined)
      throw new ProjectFileError(
        `${where}: dependency '${name}' is a ${k} dependency`,
        "only index packages can be fetched as wheels offline: publish it to your index (IAC_PIP_INDEX_URL) or vendor it into the repository",
      );
  if (value.optional === true) return undefined;
  const extras = strings(value.extras);
  const markers: string[] = [];
  if (typeof value.markers === "string") markers.push(`(${value.markers})`);
  if (typeof value.python === "string") {
    const py = poetryConstraint(value.python);
    for (const c of py.split(",").filter(Boolean)) {
      const m = /^(==|!=|>=|<=|>|<|~=)(.*)$/.exec(c);
      if (m) markers.push(`python_version ${m[1]} "${m[2]}"`);
    }
  }
  const ver = typeof value.version === "string" ? poetryConstraint(value.version) : "";
  return (
    `${name}${extras.length ? `[${extras.join(",")}]` : ""}${ver}` +
    (markers.length ? ` ; ${markers.join(" and ")}` : "")
  );
}

function poetryDependencies(table: unknown, where: string): string[] {
  if (!isRecord(table)) return [];
  const out: string[] = [];
  for (const [name, value] of Object.entries(table)) {
    if (name.toLowerCase() === "python") continue;
    const req = poetryRequirement(name, value, where);
    if (req) out.push(...req.split("\n"));
  }
  return out;
}

/** Setuptools' `{file = [...]}` (pyproject dynamic) or `file: a, b` (setup.cfg) -> file names. */
function fileDirective(value: unknown): string[] | undefined {
  if (isRecord(value) && value.file !== undefined)
    return typeof value.file === "string" ? [value.file] : strings(value.file);
  if (typeof value === "string" && /^file:/.test(value.trim()))
    return value
      .trim()
      .slice(5)
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  return undefined;
}

/**
 * What the project declares it needs at run time, statically, plus the extras the entrypoint
 * asks for (`name = pkg.cli:main [web]`). Precedence, as the build backends read them:
 * [project] (PEP 621, with `dynamic` handled) > [tool.poetry] > [tool.flit.metadata] >
 * setup.cfg [options] > setup.py (literal only, read in a container).
 */
export function declaredDependencies(
  model: ProjectModel,
  extras: string[] = [],
): DeclaredDependencies {
  const out: DeclaredDependencies = {
    requirements: [],
    files: [],
    origins: [],
    fromSetupPy: false,
    warnings: [],
  };
  const p = model.pyproject;
  const project = isRecord(p?.project) ? p.project : undefined;
  const tool = isRecord(p?.tool) ? p.tool : undefined;
  const poetry = isRecord(tool?.poetry) ? tool.poetry : undefined;
  const flitMeta =
    isRecord(tool?.flit) && isRecord(tool.flit.metadata) ? tool.flit.metadata : undefined;
  const options = model.setupCfg?.get("options");

  if (project) {
    const dynamic = strings(project.dynamic);
    const setuptoolsDynamic =
      isRecord(tool?.setuptools) && isRecord(tool.setuptools.dynamic)
        ? tool.setuptools.dynamic
        : {};
    const hatchHooks =
      isRecord(tool?.hatch) && isRecord(tool.hatch.metadata) && isRecord(tool.hatch.metadata.hooks)
        ? tool.hatch.metadata.hooks
        : {};
    const hatchReqs = isRecord(hatchHooks["requirements_txt"])
      ? hatchHooks["requirements_txt"]
      : undefined;
    if (dynamic.includes("dependencies")) {
      const files =
        fileDirective(setuptoolsDynamic.dependencies) ??
        (hatchReqs
          ? strings(hatchReqs.files).length
            ? strings(hatchReqs.files)
            : ["requirements.txt"]
          : undefined);
      if (files) {
        out.files.push(...files);
        out.origins.push("pyproject.toml dynamic dependencies");
      } else if (model.hasSetupPy) {
        out.fromSetupPy = true;
      } else if (poetry?.dependencies === undefined) {
        throw new ProjectFileError(
          'pyproject.toml: [project] lists "dependencies" in `dynamic` but no static source for them ' +
            "([tool.setuptools.dynamic] dependencies = {file = [...]}, or the hatch requirements_txt hook)",
          "list the dependencies in [project].dependencies or in requirements.txt",
        );
      }
    } else {
      const deps = strings(project.dependencies);
      out.requirements.push(...deps);
      if (deps.length) out.origins.push("pyproject.toml [project].dependencies");
    }
    const optional = isRecord(project["optional-dependencies"])
      ? project["optional-dependencies"]
      : {};
    const dynOptional = isRecord(setuptoolsDynamic["optional-dependencies"])
      ? setuptoolsDynamic["optional-dependencies"]
      : {};
    for (const extra of extras) {
      const files = fileDirective(dynOptional[extra]);
      if (files) out.files.push(...files);
      else if (optional[extra] !== undefined) out.requirements.push(...strings(optional[extra]));
      else
        out.warnings.push(
          `the entrypoint asks for extra [${extra}], which pyproject.toml does not define`,
        );
    }
    if (extras.length) out.origins.push(`pyproject.toml extras [${extras.join(",")}]`);
    // Poetry 2 projects can have [project] and [tool.poetry.dependencies] side by side.
    if (poetry)
      out.requirements.push(
        ...poetryDependencies(poetry.dependencies, "pyproject.toml [tool.poetry.dependencies]"),
      );
  } else if (poetry) {
    const where = "pyproject.toml [tool.poetry.dependencies]";
    const deps = poetryDependencies(poetry.dependencies, where);
    out.requirements.push(...deps);
    if (deps.length) out.origins.push(where);
    const pextras = isRecord(poetry.extras) ? poetry.extras : {};
    const all = isRecord(poetry.dependencies) ? poetry.dependencies : {};
    for (const extra of extras)
      for (const name of strings(pextras[extra])) {
        const v = all[name];
        const req = poetryRequirement(name, isRecord(v) ? { ...v, optional: false } : v, where);
        if (req) out.requirements.push(...req.split("\n"));
      }
  } else if (flitMeta) {
    out.requirements.push(...strings(flitMeta.requires));
    const re = isRecord(flitMeta["requires-extra"]) ? flitMeta["requires-extra"] : {};
    for (const extra of extras) out.requirements.push(...strings(re[extra]));
    if (out.requirements.length) out.origins.push("pyproject.toml [tool.flit.metadata] requires");
  } else if (options?.has("install_requires")) {
    const value = options.get("install_requires")!;
    const files = fileDirective(value);
    if (files) out.files.push(...files);
    else out.requirements.push(...iniList(value));
    out.origins.push("setup.cfg [options] install_requires");
  } else if (model.hasSetupPy) {
    out.fromSetupPy = true;
  }
  // setup.cfg extras (also when install_requires comes from elsewhere, e.g. setup.py)
  if (!project && !poetry && !flitMeta && extras.length) {
    const er = model.setupCfg?.get("options.extras_require");
    for (const extra of extras) {
      const v = er?.get(extra.toLowerCase());
      if (v === undefined) {
        out.warnings.push(
          `the entrypoint asks for extra [${extra}], which setup.cfg does not define`,
        );
        continue;
      }
      const files = fileDirective(v);
      if (files) out.files.push(...files);
      else out.requirements.push(...iniList(v));
    }
    out.origins.push(`setup.cfg extras [${extras.join(",")}]`);
  }
  return out;
}

/**
 * Why the project cannot be built from source in the image, or undefined when it can.
 * maturin compiles Rust, which the offline image build has no toolchain for.
 */
export function unbuildableReason(model: ProjectModel): string | undefined {
  if (model.backend === "maturin")
    return (
      "pyproject.toml: the build backend is maturin, which compiles Rust; the image build has no Rust toolchain " +
      "(maturin projects are used as wheels only)"
    );
  return undefined;
}
