import path from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/kernel/errors.js";
import { parseSlug, refProblem, serviceNameFor, toDnsLabel } from "../../src/intake/slug.js";

describe("parseSlug: valid forms", () => {
  const sha = "0123456789abcdef0123456789abcdef01234567";
  it.each([
    [
      "gh:pypa/sampleproject",
      { kind: "github", owner: "pypa", repo: "sampleproject", ref: undefined, subdir: undefined },
    ],
    [
      "gh:pypa/sampleproject#main",
      { kind: "github", owner: "pypa", repo: "sampleproject", ref: "main" },
    ],
    ["gh:o/r.git#v1.2.0", { kind: "github", owner: "o", repo: "r", ref: "v1.2.0" }],
    [
      "gh:acme/mono//services/api#v1",
      { kind: "github", owner: "acme", repo: "mono", ref: "v1", subdir: "services/api" },
    ],
    [
      "gh:a-b/c_d.e#feature/x-1",
      { kind: "github", owner: "a-b", repo: "c_d.e", ref: "feature/x-1" },
    ],
    [`gh:o/r#${sha.toUpperCase()}`, { kind: "github", ref: sha }],
    [
      "git+https://git.example.com/team/app.git#main",
      { kind: "git", repo: "app", ref: "main", location: "https://git.example.com/team/app.git" },
    ],
    [
      "git+https://git.example.com:8443/team/app.git//svc/a",
      {
        kind: "git",
        repo: "app",
        subdir: "svc/a",
        location: "https://git.example.com:8443/team/app.git",
      },
    ],
    [
      "git+http://127.0.0.1:9999/git/o/r.git#v1",
      { kind: "git", repo: "r", location: "http://127.0.0.1:9999/git/o/r.git" },
    ],
  ])("%s", (raw, expected) => {
    const slug = parseSlug(raw);
    expect(slug).toMatchObject({ raw, ...expected });
  });

  it("file: paths resolve against baseDir, with //subdir and #ref", () => {
    const s = parseSlug("file:../mono//services/api#v2", { baseDir: "/srv/repos" });
    expect(s).toMatchObject({
      kind: "file",
      location: "/srv/mono",
      subdir: "services/api",
      ref: "v2",
      repo: "mono",
    });
    expect(parseSlug("file:///abs/hello")).toMatchObject({ location: "/abs/hello" });
    expect(parseSlug("file:hello-main", { baseDir: "/x/examples" })).toHaveProperty(
      "location",
      path.join("/x/examples", "hello-main"),
    );
  });
});

describe("parseSlug: rejected input names the slug and the problem", () => {
  it.each([
    ["", /empty/],
    ["pypa/sampleproject", /missing the 'gh:' prefix/],
    ["gh:pypa", /exactly owner\/repo/],
    ["gh:-owner/repo", /not a valid GitHub owner/],
    ["gh:owner-/repo", /not a valid GitHub owner/],
    ["gh:o/-repo", /not a valid GitHub repository name/],
    ["gh:o/..", /not a valid GitHub repository name/],
    ["gh:o/r/extra", /exactly owner\/repo/],
    ["gh:o/r#--upload-pack=touch /tmp/pwned", /whitespace/],
    ["gh:o/r#--upload-pack=x", /starts with '-'/],
    ["gh:o/r#-x", /starts with '-'/],
    ["gh:o/r#main..dev", /'\.\.'/],
    ["gh:o/r#main@{1}", /'@\{'/],
    ["gh:o/r#a:b", /git refuses/],
    ["gh:o/r#x~1", /git refuses/],
    ["gh:o/r#x^", /git refuses/],
    ["gh:o/r#refs/heads/", /empty path component/],
    ["gh:o/r#.hidden", /starts with '\.'/],
    ["gh:o/r#x.lock", /\.lock/],
    ["gh:o/r#", /empty/],
    ["gh:o/r#@", /'@'/],
    ["gh:o/r#a\u0001b", /control characters/],
    ["gh:o/r\n", /control characters/],
    [" gh:o/r", /whitespace/],
    ["gh:o/r//../etc#v1", /'\.\.'/],
    ["gh:o/r//-rf", /not allowed/],
    ["gh:o/r//", /empty/],
    ["git+ssh://git@host/x.git", /only git\+https/],
    ["git+https://user:pw@host/x.git", /credentials/],
    ["git+http://example.com/x.git", /loopback/],
    ["git+https://host/../x.git", /not allowed/],
    ["git+https://host/-x.git", /not allowed/],
    ["git+https://host", /no repository path/],
    ["file:-rf", /starts with '-'/],
    ["file://host/x", /absolute path/],
    ["https://github.com/o/r", /a GitHub URL, not a slug/],
  ])("%j", (raw, problem) => {
    let err: unknown;
    try {
      parseSlug(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(problem);
    if (raw) expect((err as Error).message).toContain(JSON.stringify(raw).slice(1, 8));
  });

  it("file: slugs can be refused (remote API callers)", () => {
    expect(() => parseSlug("file:.", { allowFile: false })).toThrow(/not accepted here/);
  });
});

describe("refProblem follows git check-ref-format", () => {
  it.each(["main", "v1.2.3", "feature/x", "release-2024.01", "a#b"])("accepts %s", (ref) => {
    expect(refProblem(ref)).toBeUndefined();
  });
});

describe("serviceNameFor", () => {
  it.each([
    ["gh:pypa/sampleproject", "sampleproject"],
    ["gh:o/My_Repo.js", "my-repo-js"],
    ["gh:o/_x--", "x"],
    ["gh:acme/mono//services/api", "mono-api"],
    ["gh:o/___", "svc"],
    [`gh:o/${"a".repeat(70)}-b`, "a".repeat(63)],
    [`gh:o/${"a".repeat(62)}-b`, "a".repeat(62)],
  ])("%s -> %s", (raw, name) => {
    const got = serviceNameFor(parseSlug(raw));
    expect(got).toBe(name);
    expect(got).toMatch(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
  });

  it("is a valid DNS label for arbitrary input", () => {
    for (const s of ["A", "0", "-", "ü-ñ", "a--b", "x".repeat(200)]) {
      expect(toDnsLabel(s)).toMatch(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
    }
  });
});

describe("parseSlug: GitHub URLs get a gh: suggestion", () => {
  it.each([
    ["https://github.com/o/r", "gh:o/r"],
    ["https://github.com/o/r.git", "gh:o/r"],
    ["github.com/acme/api/", "gh:acme/api"],
    ["https://github.com/acme/api/tree/v1.2", "gh:acme/api#v1.2"],
  ])("%s -> did you mean %s?", (raw, suggestion) => {
    const err = (() => {
      try {
        parseSlug(raw);
      } catch (e) {
        return e;
      }
    })() as UsageError;
    expect(err).toBeInstanceOf(UsageError);
    expect(err.hint).toBe(`did you mean ${suggestion}?`);
  });
});
