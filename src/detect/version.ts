// The version handed to a build whose version comes from VCS (setuptools-scm, hatch-vcs,
// pdm-backend's scm source): a fetched tree has no `.git` (tarballs never do, our clones and
// file: copies carry none into the image), so it is derived from the resolved ref here:
//   ref is a tag that is a PEP 440 version (`v1.2.3`, `1.2.3`, `2.0.0rc1`) -> that version
//   otherwise                                                         -> 0.0.0+g<short sha>
//   a file: folder outside git (commit `local-<hash>`)                -> 0.0.0+local.<hash8>
// and passed to the build as SETUPTOOLS_SCM_PRETEND_VERSION, its per-distribution form
// SETUPTOOLS_SCM_PRETEND_VERSION_FOR_<DIST> and PDM_BUILD_SCM_VERSION.

/** PEP 440 public version (the regex of PEP 440's appendix, without the local part). */
const PEP440 =
  /^([1-9][0-9]*!)?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*((a|b|rc)(0|[1-9][0-9]*))?(\.post(0|[1-9][0-9]*))?(\.dev(0|[1-9][0-9]*))?$/;

export interface DerivedVersion {
  version: string;
  /** Where it came from: the ref (a version tag), the commit, or a local folder's content hash. */
  from: "tag" | "commit" | "local";
}

/** `v1.2.3` / `1.2.3` -> `1.2.3`; anything that is not a canonical PEP 440 version -> undefined. */
export function versionFromTag(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  const name = ref.replace(/^refs\/tags\//, "").replace(/^[vV](?=\d)/, "");
  return PEP440.test(name) ? name : undefined;
}

export function deriveVersion(ref: string | undefined, commit: string): DerivedVersion {
  const tagged = versionFromTag(ref);
  if (tagged) return { version: tagged, from: "tag" };
  if (commit.startsWith("local-"))
    return { version: `0.0.0+local.${commit.slice(6, 14)}`, from: "local" };
  return { version: `0.0.0+g${commit.slice(0, 7).toLowerCase()}`, from: "commit" };
}

/**
 * The per-distribution variable setuptools-scm reads: SETUPTOOLS_SCM_PRETEND_VERSION_FOR_ and
 * the distribution name normalized (PEP 503), upper-cased, `-` -> `_`. Undefined without a
 * name (the generic form still applies).
 */
export function pretendVersionVar(distName: string | undefined): string | undefined {
  if (!distName) return undefined;
  const norm = distName
    .toLowerCase()
    .replace(/[-_.]+/g, "-")
    .toUpperCase()
    .replace(/-/g, "_");
  return /^[A-Z0-9_]+$/.test(norm) ? `SETUPTOOLS_SCM_PRETEND_VERSION_FOR_${norm}` : undefined;
}
