// Repository references ("slugs") -> Slug. Three forms:
//   gh:owner/repo[//subdir][#ref]                 GitHub (API/server URLs come from config)
//   git+https://host/path.git[//subdir][#ref]     any git server (git+http:// for loopback only)
//   file:path[//subdir][#ref]                     a local folder (relative to the repos file)
// Everything that later reaches git, a URL or the filesystem is validated here, so nothing a
// user writes can become a git option, escape a folder, or smuggle control characters.
import path from "node:path";
import { UsageError } from "../kernel/errors.js";
import type { Slug } from "../kernel/types.js";

export interface ParseSlugOptions {
  /** Folder `file:` relative paths resolve against (the repos file's folder). Default: cwd. */
  baseDir?: string;
  /** Accept `file:` slugs (default true; the admin API may turn them off). */
  allowFile?: boolean;
}

const FORMS =
  "expected gh:owner/repo[//subdir][#ref], git+https://host/path.git[//subdir][#ref] or file:path[//subdir][#ref]";

// GitHub: owner 1-39 alphanumerics or hyphens, not starting/ending with a hyphen;
// repo 1-100 of [A-Za-z0-9._-], not "." or "..".
const OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$/;
const REPO_RE = /^[A-Za-z0-9._-]{1,100}$/;
const SUBDIR_PART_RE = /^[A-Za-z0-9_.+@][A-Za-z0-9_.+@-]*$/;
const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const URL_PATH_PART_RE = /^[A-Za-z0-9_.~+-]+$/;
// C0, DEL, C1, and the invisible formatting characters that reorder or hide text (bidi
// embeddings/overrides/isolates, zero-width, BOM).
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

function bad(raw: string, what: string, hint: string = FORMS): UsageError {
  return new UsageError(`invalid slug ${JSON.stringify(raw)}: ${what}`, hint);
}

/**
 * Validates a ref the way `git check-ref-format` would (for a single branch/tag name or a
 * commit SHA), plus our own rule: it must not look like an option.
 * Returns an error description or undefined when valid.
 */
export function refProblem(ref: string): string | undefined {
  if (ref.length === 0) return "the ref after '#' is empty";
  if (ref.length > 255) return "the ref is longer than 255 characters";
  if (CONTROL_RE.test(ref)) return "the ref contains control characters";
  // ASCII only: bidi controls and look-alike letters could make a ref read as another one.
  if (/[^\x21-\x7e]/.test(ref))
    return "the ref contains non-ASCII characters (bidi controls, look-alike letters)";
  if (/\s/.test(ref)) return "the ref contains whitespace";
  if (ref.startsWith("-")) return "the ref starts with '-' (it would read as an option)";
  if (/[~^:?*[\\]/.test(ref)) return "the ref contains one of ~ ^ : ? * [ \\ (git refuses those)";
  if (ref.includes("..")) return "the ref contains '..'";
  if (ref.includes("@{")) return "the ref contains '@{'";
  if (ref === "@") return "the ref '@' is not allowed";
  if (ref.startsWith("/") || ref.endsWith("/") || ref.includes("//"))
    return "the ref has an empty path component (leading, trailing or double '/')";
  if (ref.endsWith(".")) return "the ref ends with '.'";
  for (const part of ref.split("/")) {
    if (part.startsWith(".")) return `the ref component '${part}' starts with '.'`;
    if (part.endsWith(".lock")) return `the ref component '${part}' ends with '.lock'`;
  }
  return undefined;
}

/** True for a full 40-hex commit SHA (any case). */
export function isFullSha(ref: string | undefined): ref is string {
  return ref !== undefined && /^[0-9a-fA-F]{40}$/.test(ref);
}

function parseSubdir(raw: string, subdir: string): string {
  const trimmed = subdir.replace(/\/+$/, "");
  if (trimmed === "") throw bad(raw, "the subdirectory after '//' is empty");
  for (const part of trimmed.split("/")) {
    if (part === "" || part === "." || part === "..")
      throw bad(raw, `the subdirectory '${subdir}' has an empty, '.' or '..' component`);
    if (!SUBDIR_PART_RE.test(part))
      throw bad(
        raw,
        `the subdirectory component '${part}' is not allowed (letters, digits, . _ + @ -; not starting with '-')`,
      );
  }
  return trimmed;
}

/** Splits `body#ref` and validates the ref. */
function splitRef(raw: string, body: string): [string, string | undefined] {
  const hash = body.indexOf("#");
  if (hash < 0) return [body, undefined];
  const ref = body.slice(hash + 1);
  const problem = refProblem(ref);
  if (problem)
    throw bad(raw, problem, "a ref is a branch, a tag or a commit SHA, e.g. #main, #v1.2.0");
  return [body.slice(0, hash), isFullSha(ref) ? ref.toLowerCase() : ref];
}

function parseGitHub(raw: string, rest: string): Slug {
  const [body, ref] = splitRef(raw, rest);
  const sep = body.indexOf("//");
  const repoPart = sep >= 0 ? body.slice(0, sep) : body;
  const subdir = sep >= 0 ? parseSubdir(raw, body.slice(sep + 2)) : undefined;
  const parts = repoPart.split("/");
  if (parts.length !== 2) throw bad(raw, "expected exactly owner/repo after 'gh:'");
  const owner = parts[0]!;
  let repo = parts[1]!;
  if (!OWNER_RE.test(owner))
    throw bad(
      raw,
      `'${owner}' is not a valid GitHub owner (1-39 letters, digits or '-', not starting or ending with '-')`,
    );
  if (repo.endsWith(".git")) repo = repo.slice(0, -4);
  if (!REPO_RE.test(repo) || repo === "." || repo === ".." || repo.startsWith("-"))
    throw bad(
      raw,
      `'${parts[1]}' is not a valid GitHub repository name (1-100 letters, digits, '.', '_' or '-', not starting with '-')`,
    );
  return { raw, kind: "github", owner, repo, ref, subdir };
}

function parseGitUrl(raw: string, rest: string): Slug {
  // rest = "https://host/path.git//subdir#ref" (the "git+" prefix removed)
  const [body, ref] = splitRef(raw, rest);
  const scheme = body.startsWith("https://")
    ? "https"
    : body.startsWith("http://")
      ? "http"
      : undefined;
  if (!scheme)
    throw bad(raw, "only git+https:// (or git+http:// to a loopback host) URLs are supported");
  const afterScheme = body.slice(scheme.length + 3);
  const sep = afterScheme.indexOf("//");
  const hostPath = sep >= 0 ? afterScheme.slice(0, sep) : afterScheme;
  const subdir = sep >= 0 ? parseSubdir(raw, afterScheme.slice(sep + 2)) : undefined;
  const slash = hostPath.indexOf("/");
  if (slash < 0) throw bad(raw, "the URL has no repository path");
  const hostPort = hostPath.slice(0, slash);
  const urlPath = hostPath.slice(slash + 1);
  if (hostPort.includes("@"))
    throw bad(raw, "credentials in the URL are not allowed (use GITHUB_TOKEN)");
  const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(hostPort);
  const host = m?.[1];
  if (!host || (!host.startsWith("[") && !HOST_RE.test(host)) || (m?.[2] && Number(m[2]) > 65535))
    throw bad(raw, `'${hostPort}' is not a valid host[:port]`);
  if (scheme === "http" && !LOOPBACK.has(host.toLowerCase()))
    throw bad(raw, "plain http:// is only allowed for loopback hosts; use git+https://");
  const pathParts = urlPath.split("/");
  for (const part of pathParts) {
    if (
      part === "" ||
      part === "." ||
      part === ".." ||
      part.startsWith("-") ||
      !URL_PATH_PART_RE.test(part)
    )
      throw bad(raw, `the URL path component '${part}' is not allowed`);
  }
  const last = pathParts[pathParts.length - 1]!;
  const repo = last.endsWith(".git") ? last.slice(0, -4) : last;
  if (!repo) throw bad(raw, "the URL has no repository name");
  return { raw, kind: "git", repo, ref, subdir, location: `${scheme}://${hostPort}/${urlPath}` };
}

function parseFile(raw: string, rest: string, baseDir: string): Slug {
  const [body, ref] = splitRef(raw, rest);
  // file:///abs/path is the URL spelling of /abs/path.
  const p0 = body.startsWith("///") ? body.slice(2) : body.startsWith("//") ? undefined : body;
  if (p0 === undefined)
    throw bad(raw, "file:// URLs need an absolute path (file:///path) or use file:path");
  // A "//" after the first character separates the subdirectory (file:../mono//services/api).
  const sep = p0.indexOf("//", 1);
  const p = sep >= 0 ? p0.slice(0, sep) : p0;
  const subdir = sep >= 0 ? parseSubdir(raw, p0.slice(sep + 2)) : undefined;
  if (p === "") throw bad(raw, "the path after 'file:' is empty");
  if (CONTROL_RE.test(p)) throw bad(raw, "the path contains control characters");
  if (p.startsWith("-")) throw bad(raw, "the path starts with '-' (write ./-name)");
  const badChar = /[^A-Za-z0-9._/~@+,=-]/.exec(p);
  if (badChar)
    throw bad(
      raw,
      `the path contains ${badChar[0] === " " ? "a space" : `the character '${badChar[0]}'`}`,
      "rename the folder (letters, digits and . _ - / ~ @ + , = only), or link it under such a name",
    );
  const location = path.resolve(baseDir, p);
  const repo = path.basename(location) || "root";
  return { raw, kind: "file", repo, ref, subdir, location };
}

/** Parses and validates one slug. Throws UsageError naming the slug and what is wrong. */
export function parseSlug(raw: string, opts: ParseSlugOptions = {}): Slug {
  if (typeof raw !== "string")
    throw new UsageError(`invalid slug ${JSON.stringify(raw)}: expected a string`, FORMS);
  if (raw.length === 0) throw bad(raw, "empty");
  if (raw.length > 1024) throw bad(raw.slice(0, 60) + "…", "longer than 1024 characters");
  if (CONTROL_RE.test(raw)) throw bad(raw, "contains control characters");
  if (raw !== raw.trim()) throw bad(raw, "has leading or trailing whitespace");
  if (raw.startsWith("gh:")) {
    if (/\s/.test(raw)) throw bad(raw, "contains whitespace");
    return parseGitHub(raw, raw.slice(3));
  }
  if (raw.startsWith("git+")) {
    if (/\s/.test(raw)) throw bad(raw, "contains whitespace");
    return parseGitUrl(raw, raw.slice(4));
  }
  if (raw.startsWith("file:")) {
    if (opts.allowFile === false)
      throw bad(raw, "file: slugs are not accepted here", "use gh: or git+https: slugs");
    return parseFile(raw, raw.slice(5), opts.baseDir ?? process.cwd());
  }
  if (/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(raw))
    throw bad(raw, "missing the 'gh:' prefix", `did you mean gh:${raw}?`);
  const url = GITHUB_URL_RE.exec(raw);
  if (url) {
    const [, owner, repo, ref] = url;
    const suggestion = `gh:${owner}/${repo!.replace(/\.git$/, "")}${ref ? `#${ref}` : ""}`;
    throw bad(raw, "a GitHub URL, not a slug", `did you mean ${suggestion}?`);
  }
  throw bad(raw, "unknown form");
}

/**
 * A DNS label (RFC 1123, <= 63 chars) for the service: the repo name, plus the last subdir
 * component for monorepo slugs (`gh:o/mono//services/api` -> `mono-api`). Lowercased, runs of
 * characters outside [a-z0-9] become '-', trimmed; never empty.
 */
/** https://github.com/owner/repo[.git][/tree/REF] (what a browser's address bar holds). */
const GITHUB_URL_RE =
  /^(?:https?:\/\/)?(?:www\.)?github\.com\/([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+?)(?:\.git)?(?:\/tree\/([^\s/]+))?\/?$/;

export function serviceNameFor(slug: Slug): string {
  const base = slug.subdir ? `${slug.repo}-${slug.subdir.split("/").pop()}` : slug.repo;
  return toDnsLabel(base);
}

export function toDnsLabel(s: string): string {
  let label = s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  label = label.slice(0, 63).replace(/-+$/, "");
  return label || "svc";
}
