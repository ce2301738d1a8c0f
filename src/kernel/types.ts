// Types shared along the pipeline: repos file -> slug -> source -> entrypoint -> image -> stack.

/** Container limits of an app (defaults and parsing in intake/resources.ts). */
export interface Resources {
  memoryMb: number;
  cpus: number;
  pids: number;
}

/** A parsed repository reference. `raw` is the text the user wrote. */
/** What every slug has. */
interface SlugBase {
  raw: string;
  /** Repository name (all kinds; for file:, the folder's base name). */
  repo: string;
  /** Branch, tag or commit SHA; undefined = the default branch (HEAD). */
  ref?: string;
  /** Subdirectory inside the repo (monorepos: `gh:o/r//services/api`). */
  subdir?: string;
}

/** `gh:owner/repo`: GitHub (API + server URL from config). */
export interface GitHubSlug extends SlugBase {
  kind: "github";
  owner: string;
}

/** `git+https://host/path`: any git server. */
export interface GitSlug extends SlugBase {
  kind: "git";
  /** Clone URL (without `git+`). */
  location: string;
}

/** `file:path`: a local folder (a git work tree or a plain directory). */
export interface FileSlug extends SlugBase {
  kind: "file";
  /** Absolute path. */
  location: string;
}

export type Slug = GitHubSlug | GitSlug | FileSlug;

/** One service to deploy, as read from the repos file. */
export interface ServiceSpec {
  name: string;
  slug: Slug;
  /** Entrypoint override from the repos file (argv string or list). */
  entrypoint?: string[];
  /** `entrypoint: {process: worker}`: run that process type of the repo's Procfile. */
  process?: string;
  /** `build: dockerfile`: build the repo's own Dockerfile, then layer the runner on top. */
  build?: BuildMode;
  /** `labels:` of the repos file: image labels; `io.iac.entrypoint` overrides detection. */
  labels?: Record<string, string>;
  /** `telemetry: off|auto`: OpenTelemetry auto-instrumentation of main() (default auto). */
  telemetry?: TelemetryMode;
  env: Record<string, string>;
  /** The port the app serves its peers on (127.0.0.1 of its container); none = not reachable. */
  port?: number;
  /** Container limits (defaults unless the repos file sets `resources:`). */
  resources?: Resources;
  /** Swarm target: tasks of the service (default 1). */
  replicas?: number;
  /** Swarm target: placement constraints, e.g. "node.labels.zone==a". */
  placement?: string[];
}

/** A fetched source tree at a resolved commit. */
export interface Source {
  /** Directory the entrypoint detection and the image build use (subdir applied). */
  dir: string;
  /** Root of the extracted tree (before subdir). */
  root: string;
  /** Full 40-hex commit SHA (for file: slugs without git, a content hash prefixed `local-`). */
  commit: string;
  /** How it was obtained. */
  via: "tarball" | "clone" | "cache" | "local";
}

/** How the image is made: the generated Dockerfile, or the repo's own Dockerfile + the runner. */
export type BuildMode = "default" | "dockerfile";
export type TelemetryMode = "auto" | "off";

export type EntrypointKind =
  "python-file" | "python-main-function" | "console-script" | "python-module" | "executable";

export interface Entrypoint {
  kind: EntrypointKind;
  /** argv executed by the runner inside the container, cwd /app. */
  argv: string[];
  /** Which rule fired, e.g. "root-main.py", "pyproject-project-scripts", "override-repos-file". */
  rule: string;
  /** The image must `pip install` the project (console scripts, src/ layouts). */
  installProject: boolean;
  /** Extras the entrypoint asks for (`name = pkg.cli:main [web]`): their dependencies are installed. */
  extras?: string[];
  /** Set when the image is built from the repo's own Dockerfile (path relative to the source dir). */
  dockerfile?: string;
}

/** A built (or reused) app image. */
export interface BuiltImage {
  tag: string;
  id: string;
  /** False when the tag already existed and the build was skipped. */
  built: boolean;
  /** What the build decided about OpenTelemetry auto-instrumentation of main() (when built). */
  telemetry?: { enabled: boolean; reason: string };
}

/** Cert files for one identity (absolute paths). */
export interface CertPaths {
  caFile: string;
  certFile: string;
  keyFile: string;
}
