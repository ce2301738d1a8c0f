import { describe, expect, it } from "vitest";
import { deriveVersion, pretendVersionVar, versionFromTag } from "../../src/detect/version.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";

describe("versions from VCS without .git", () => {
  it.each([
    ["v1.2.3", "1.2.3"],
    ["1.2.3", "1.2.3"],
    ["V2.0", "2.0"],
    ["refs/tags/v0.9.1", "0.9.1"],
    ["2.0.0rc1", "2.0.0rc1"],
    ["1.0.post2.dev3", "1.0.post2.dev3"],
    ["1!2.0", "1!2.0"],
  ])("a version tag %s -> %s", (ref, want) => {
    expect(versionFromTag(ref)).toBe(want);
    expect(deriveVersion(ref, SHA)).toEqual({ version: want, from: "tag" });
  });

  it.each(["main", "release-7", "v1.2.3-foo", "1.02", "vv1", "", undefined])(
    "not a version: %s -> 0.0.0+g<short sha>",
    (ref) => {
      expect(versionFromTag(ref)).toBeUndefined();
      expect(deriveVersion(ref, SHA)).toEqual({ version: "0.0.0+g0123456", from: "commit" });
    },
  );

  it("a file: folder outside git: 0.0.0+local.<hash>", () => {
    expect(deriveVersion(undefined, `local-${"f".repeat(40)}`)).toEqual({
      version: "0.0.0+local.ffffffff",
      from: "local",
    });
  });

  it("the per-distribution variable normalizes the name as setuptools-scm does", () => {
    expect(pretendVersionVar("scm-app")).toBe("SETUPTOOLS_SCM_PRETEND_VERSION_FOR_SCM_APP");
    expect(pretendVersionVar("Foo.Bar__baz")).toBe(
      "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_FOO_BAR_BAZ",
    );
    expect(pretendVersionVar(undefined)).toBeUndefined();
    expect(pretendVersionVar("bad name; rm")).toBeUndefined();
  });
});
