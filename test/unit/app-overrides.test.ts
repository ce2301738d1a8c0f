// Issue 12 items 3 and 4, detection side: the Procfile rule, `entrypoint: {process: NAME}`,
// `build: dockerfile` (repos file or [tool.iac]), the io.iac.entrypoint label (repos file or
// the repo's Dockerfile), ENTRYPOINT/CMD in exec form, and the precedence between all of them.
// Static only: nothing is built or run.
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  EntrypointError,
  detectEntrypoint,
  type DetectOverrides,
} from "../../src/detect/entrypoint.js";
import { execArgv, labelArgv, readDockerfile, rewriteFroms } from "../../src/detect/dockerfile.js";
import { parseProcfile, pickProcess, splitCommand } from "../../src/detect/procfile.js";
import { parseServiceList } from "../../src/intake/repofile.js";
import type { Entrypoint, Source } from "../../src/kernel/types.js";
import { type FixtureFiles, writeFixtureFiles } from "../helpers/git-fixtures.js";

const tmp = mkdtempSync(path.join(tmpdir(), "iac-overrides-"));
afterAll(() => rm(tmp, { recursive: true, force: true }));
let n = 0;

async function source(files: FixtureFiles): Promise<Source> {
  const root = path.join(tmp, String(n++));
  await writeFixtureFiles(root, { ".keep": "", ...files });
  return { root, dir: root, commit: "0".repeat(40), via: "local" };
}

const MAIN = "def main():\n    print('hi')\n\nif __name__ == '__main__':\n    main()\n";
const DF = (extra: string) => `FROM python:3.11-slim\nWORKDIR /srv\nCOPY . .\n${extra}`;

describe("Procfile parsing", () => {
  it("reads process types in file order, skipping blanks and comments", () => {
    const types = parseProcfile("# procs\nweb: gunicorn app:app\n\nworker:python -m jobs\r\n");
    expect(types).toEqual([
      { type: "web", command: "gunicorn app:app", line: 2 },
      { type: "worker", command: "python -m jobs", line: 4 },
    ]);
  });

  it.each([
    ["web, then worker, then the first", "release: migrate\nclock: c\nworker: w\nweb: x\n", "web"],
    ["worker before other types", "release: migrate\nclock: c\nworker: w\n", "worker"],
    ["the first that is not release", "release: migrate\nclock: c\nbeat: b\n", "clock"],
  ])("picks %s", (_n, text, want) => {
    expect(pickProcess(parseProcfile(text))?.type).toBe(want);
  });

  it("only a release process: no candidate", () => {
    expect(pickProcess(parseProcfile("release: python migrate.py\n"))).toBeUndefined();
  });

  it.each([
    ["web python app.py", /not of the form 'type: command'/],
    ["web: a\nweb: b", /defined twice/],
    ["web:   ", /has no command/],
  ])("refuses %j", (text, re) => {
    expect(() => parseProcfile(text)).toThrow(re);
  });

  it.each([
    ["python -m app --port 8080", ["python", "-m", "app", "--port", "8080"]],
    [`python app.py 'a b' "c \\"d\\"" e\\ f`, ["python", "app.py", "a b", 'c "d"', "e f"]],
    ["  gunicorn   app:app\t-w 2 ", ["gunicorn", "app:app", "-w", "2"]],
  ])("splits %j without a shell", (cmd, argv) => {
    expect(splitCommand(cmd, "Procfile:1 (web)")).toEqual(argv);
  });

  it.each([
    ["gunicorn app:app --bind 0.0.0.0:$PORT", /'\$'/],
    ['python "$HOME/x.py"', /expansion/],
    ["python app.py | tee log", /'\|'/],
    ["python a.py && python b.py", /'&'/],
    ["python app.py > out", /'>'/],
    ["FOO=1 python app.py", /VAR=value/],
    ["python 'app.py", /unterminated/],
    ["python *.py", /glob/],
    ["python `which app`", /'`'/],
  ])("refuses shell syntax in %j, naming the Procfile line", (cmd, re) => {
    expect(() => splitCommand(cmd, "Procfile:3 (web)")).toThrow(re);
    expect(() => splitCommand(cmd, "Procfile:3 (web)")).toThrow(/Procfile:3 \(web\)/);
  });
});

describe("Dockerfile reading (static)", () => {
  it("finds external FROMs (ARG defaults expanded), skipping stages and scratch", () => {
    const text =
      "ARG PY=3.11\nFROM python:${PY}-slim AS build\nRUN pip wheel .\n" +
      "FROM scratch AS empty\nFROM build\nCOPY --from=empty / /\n";
    const facts = readDockerfile(text);
    expect(facts.froms.map((f) => [f.image, f.line])).toEqual([["python:3.11-slim", 2]]);
    expect(rewriteFroms(text, facts.froms, new Map([["python:3.11-slim", "iac-local/py:1"]]))).toBe(
      text.replace("python:${PY}-slim", "iac-local/py:1"),
    );
  });

  it("final image: label, ENTRYPOINT + CMD through the stage chain; ENTRYPOINT resets CMD", () => {
    const facts = readDockerfile(
      'FROM python:3.11-slim AS base\nLABEL io.iac.entrypoint="python -m base"\nCMD ["python", "old.py"]\n' +
        'FROM node:20 AS other\nLABEL io.iac.entrypoint="node x"\n' +
        'FROM base\nENTRYPOINT ["python", "-m", "app"]\nCMD ["--port", "8080"]\n',
    );
    expect(facts.label).toBe("python -m base");
    expect(execArgv(facts).argv).toEqual(["python", "-m", "app", "--port", "8080"]);
    const reset = readDockerfile('FROM a AS s\nCMD ["x"]\nFROM s\nENTRYPOINT ["python", "y.py"]\n');
    expect(execArgv(reset).argv).toEqual(["python", "y.py"]);
  });

  it("shell form is not used, and says so", () => {
    const facts = readDockerfile("FROM python:3.11-slim\nCMD python app.py\n");
    expect(execArgv(facts)).toEqual({
      why: expect.stringMatching(/CMD python app.py: shell form is not used/),
    });
  });

  it.each([
    ["RUN true\nFROM x\n", /RUN before the first FROM/],
    ["# only a comment\n", /has no FROM/],
    ["FROM python:${NOPE}\n", /Dockerfile:1: .*\$\{NOPE\}.*no default/],
  ])("refuses %j naming the line", (text, re) => {
    expect(() => readDockerfile(text)).toThrow(re);
  });

  it("label values: JSON list or words", () => {
    expect(labelArgv('["python", "-m", "my app"]', "x")).toEqual(["python", "-m", "my app"]);
    expect(labelArgv("  python  -m app ", "x")).toEqual(["python", "-m", "app"]);
    expect(() => labelArgv("[1, 2]", "x")).toThrow(/JSON list of strings/);
    expect(() => labelArgv("   ", "x")).toThrow(/empty/);
  });
});

type Case = [string, FixtureFiles, Partial<Entrypoint>, DetectOverrides?];

const cases: Case[] = [
  [
    "procfile: web wins over main.py (after the overrides, before the layout rules)",
    { Procfile: "worker: python -m jobs\nweb: python main.py --port 8080\n", "main.py": MAIN },
    { rule: "procfile", kind: "python-file", argv: ["python", "main.py", "--port", "8080"] },
  ],
  [
    "procfile: a console script from requirements (gunicorn)",
    { Procfile: "web: gunicorn app:app -w 2\n", "requirements.txt": "gunicorn\n", "app.py": "" },
    { rule: "procfile", kind: "console-script", argv: ["gunicorn", "app:app", "-w", "2"] },
  ],
  [
    "procfile: worker when there is no web",
    { Procfile: "release: python migrate.py\nworker: python -m jobs\n", "jobs/__main__.py": "" },
    { rule: "procfile", kind: "python-module", argv: ["python", "-m", "jobs"] },
  ],
  [
    "procfile: only release -> the layout rules",
    { Procfile: "release: python migrate.py\n", "main.py": MAIN },
    { rule: "root-main.py" },
  ],
  [
    "entrypoint: {process: worker} picks that process type",
    {
      Procfile: "web: python main.py\nworker: python -m jobs\n",
      "main.py": MAIN,
      "jobs/__main__.py": "",
    },
    { rule: "override-repos-file-process", argv: ["python", "-m", "jobs"] },
    { process: "worker" },
  ],
  [
    "[tool.iac] entrypoint wins over the Procfile",
    {
      Procfile: "web: python main.py\n",
      "main.py": MAIN,
      "pyproject.toml": '[tool.iac]\nentrypoint = "python -m x"\n',
    },
    { rule: "override-pyproject", argv: ["python", "-m", "x"] },
  ],
  [
    "repos file entrypoint wins over everything",
    {
      Procfile: "web: python main.py\n",
      "main.py": MAIN,
      Dockerfile: DF('LABEL io.iac.entrypoint="python -m lbl"\n'),
    },
    { rule: "override-repos-file", argv: ["python", "-m", "cli"], dockerfile: "Dockerfile" },
    { entrypoint: ["python", "-m", "cli"], build: "dockerfile" },
  ],
  [
    "repos file label wins over the Dockerfile label and [tool.iac]",
    {
      "main.py": MAIN,
      Dockerfile: DF('LABEL io.iac.entrypoint="python -m lbl"\n'),
      "pyproject.toml": '[tool.iac]\nentrypoint = "python -m py"\nbuild = "dockerfile"\n',
    },
    { rule: "override-repos-file-label", argv: ["python", "-m", "repo"], dockerfile: "Dockerfile" },
    { labels: { "io.iac.entrypoint": '["python", "-m", "repo"]' } },
  ],
  [
    "repos file label without a Dockerfile build: files it names must exist",
    { "main.py": MAIN, "serve.py": "" },
    { rule: "override-repos-file-label", kind: "python-file", argv: ["python", "serve.py"] },
    { labels: { "io.iac.entrypoint": "python serve.py" } },
  ],
  [
    "Dockerfile LABEL wins over [tool.iac] entrypoint and ENTRYPOINT",
    {
      Dockerfile: DF('LABEL io.iac.entrypoint="python -m lbl"\nENTRYPOINT ["python", "ep.py"]\n'),
      "pyproject.toml": '[tool.iac]\nentrypoint = "python -m py"\n',
    },
    {
      rule: "override-dockerfile-label",
      kind: "python-module",
      argv: ["python", "-m", "lbl"],
      installProject: false,
    },
    { build: "dockerfile" },
  ],
  [
    "[tool.iac] entrypoint wins over the Dockerfile's ENTRYPOINT",
    {
      Dockerfile: DF('ENTRYPOINT ["python", "ep.py"]\n'),
      "pyproject.toml": '[tool.iac]\nentrypoint = "python -m py"\n',
    },
    { rule: "override-pyproject", argv: ["python", "-m", "py"], dockerfile: "Dockerfile" },
    { build: "dockerfile" },
  ],
  [
    "Dockerfile ENTRYPOINT + CMD (exec form) win over the Procfile; files live in the image",
    {
      Dockerfile: DF('ENTRYPOINT ["/srv/bin/start"]\nCMD ["--fast"]\n'),
      Procfile: "web: python main.py\n",
      "main.py": MAIN,
    },
    { rule: "dockerfile-entrypoint", kind: "executable", argv: ["/srv/bin/start", "--fast"] },
    { build: "dockerfile" },
  ],
  [
    "[tool.iac] build = dockerfile; shell-form CMD falls through to the Procfile",
    {
      Dockerfile: DF("CMD python main.py\n"),
      Procfile: "web: python main.py\n",
      "main.py": MAIN,
      "pyproject.toml": '[tool.iac]\nbuild = "dockerfile"\n',
    },
    { rule: "procfile", argv: ["python", "main.py"], dockerfile: "Dockerfile" },
  ],
  [
    "a Dockerfile without build: dockerfile is not used at all",
    { Dockerfile: DF('LABEL io.iac.entrypoint="python -m lbl"\n'), "main.py": MAIN },
    { rule: "root-main.py" },
  ],
  [
    "build: default in the repos file wins over [tool.iac] build",
    {
      Dockerfile: DF('CMD ["python", "x.py"]\n'),
      "main.py": MAIN,
      "pyproject.toml": '[tool.iac]\nbuild = "dockerfile"\n',
    },
    { rule: "root-main.py" },
    { build: "default" },
  ],
];

describe("detectEntrypoint: Procfile, own Dockerfile, labels — precedence", () => {
  it.each(cases)("%s", async (_name, files, expected, overrides) => {
    const ep = await detectEntrypoint(await source(files), overrides);
    expect(ep).toMatchObject(expected);
    if (
      !("dockerfile" in expected) &&
      !overrides?.build &&
      !JSON.stringify(files).includes("build")
    )
      expect(ep.dockerfile).toBeUndefined();
  });
});

async function detectError(
  files: FixtureFiles,
  overrides?: DetectOverrides,
): Promise<EntrypointError> {
  const err = await detectEntrypoint(await source(files), overrides).then(
    () => new Error("expected an EntrypointError"),
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(EntrypointError);
  return err as EntrypointError;
}

describe("detectEntrypoint: errors for the new routes", () => {
  it("a Procfile with shell syntax names the line and how to override", async () => {
    const err = await detectError({ Procfile: "web: gunicorn app:app -b 0.0.0.0:$PORT\n" });
    expect(err.message).toMatch(/Procfile:1 \(web\).*needs a shell/);
    expect(err.hint).toMatch(/entrypoint:/);
  });

  it("{process: NAME} that the Procfile lacks lists the types it has", async () => {
    const err = await detectError(
      { Procfile: "web: python main.py\nclock: python -m c\n", "main.py": MAIN },
      { process: "worker" },
    );
    expect(err.message).toMatch(/no process type 'worker' \(it has: web, clock\)/);
  });

  it("{process: NAME} without a Procfile", async () => {
    const err = await detectError({ "main.py": MAIN }, { process: "web" });
    expect(err.message).toMatch(/no Procfile/);
  });

  it("build: dockerfile without a Dockerfile", async () => {
    const err = await detectError({ "main.py": MAIN }, { build: "dockerfile" });
    expect(err.message).toMatch(/build: dockerfile, but there is no Dockerfile/);
  });

  it("a Dockerfile that does not parse into stages names the line", async () => {
    const err = await detectError({ Dockerfile: "RUN echo hi\n" }, { build: "dockerfile" });
    expect(err.message).toMatch(/Dockerfile:1: RUN before the first FROM/);
  });

  it("[tool.iac] build with an unknown value", async () => {
    const err = await detectError({
      "main.py": MAIN,
      "pyproject.toml": '[tool.iac]\nbuild = "nix"\n',
    });
    expect(err.message).toMatch(/build = "nix" is not "dockerfile" or "default"/);
  });

  it("nothing found in a dockerfile build lists the Dockerfile candidates too", async () => {
    const err = await detectError(
      { Dockerfile: DF("CMD python app.py\n") },
      { build: "dockerfile" },
    );
    expect(err.candidates.join("\n")).toMatch(/LABEL io.iac.entrypoint: not set/);
    expect(err.candidates.join("\n")).toMatch(/shell form is not used/);
    expect(err.candidates.join("\n")).toMatch(/Procfile: absent/);
  });
});

describe("repos file: entrypoint {process}, build, labels, telemetry", () => {
  const parse = (entry: Record<string, unknown>) =>
    parseServiceList({ services: [{ slug: "gh:acme/shop", ...entry }] }, "repos.yaml", "/tmp")[0]!;

  it("reads the new keys", () => {
    const spec = parse({
      entrypoint: { process: "worker" },
      build: "dockerfile",
      labels: { "io.iac.entrypoint": "python -m app", "com.acme.team": "shop", n: 3 },
      telemetry: "off",
    });
    expect(spec).toMatchObject({
      process: "worker",
      build: "dockerfile",
      labels: { "io.iac.entrypoint": "python -m app", "com.acme.team": "shop", n: "3" },
      telemetry: "off",
    });
    expect(spec.entrypoint).toBeUndefined();
    expect(parse({ telemetry: false }).telemetry).toBe("off");
  });

  it("one repo, one service per process type", () => {
    const specs = parseServiceList(
      {
        services: [
          { slug: "gh:acme/shop", name: "shop-web", entrypoint: { process: "web" } },
          { slug: "gh:acme/shop", name: "shop-worker", entrypoint: { process: "worker" } },
        ],
      },
      "repos.yaml",
      "/tmp",
    );
    expect(specs.map((s) => [s.name, s.process])).toEqual([
      ["shop-web", "web"],
      ["shop-worker", "worker"],
    ]);
  });

  it.each([
    [{ entrypoint: { proc: "web" } }, /exactly one key, process/],
    [{ entrypoint: { process: "we b" } }, /not a Procfile process type name/],
    [{ build: "nix" }, /build "nix" is not "dockerfile" or "default"/],
    [{ telemetry: "on" }, /telemetry "on" is not "auto" or "off"/],
    [{ labels: ["a"] }, /labels must be a mapping/],
    [{ labels: { "io.iac.service": "x" } }, /set by iac itself/],
    [{ labels: { "org.opencontainers.image.revision": "x" } }, /set by iac itself/],
    [{ labels: { "io.iac.entrypoint": "[1]" } }, /JSON list of strings/],
    [{ labels: { "bad key": "x" } }, /not a label name/],
  ])("refuses %j with the entry named", (entry, re) => {
    expect(() => parse(entry)).toThrow(re);
    expect(() => parse(entry)).toThrow(/repos.yaml: entry 1 \(gh:acme\/shop\)/);
  });
});
