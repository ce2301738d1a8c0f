import { mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "../../src/kernel/errors.js";
import { loadReposFile, parseServiceList } from "../../src/intake/repofile.js";

const dir = mkdtempSync(path.join(tmpdir(), "iac-repofile-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function loadError(name: string, text: string): Promise<UsageError> {
  const p = file(name, text);
  try {
    await loadReposFile(p);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error("expected an error");
}

describe("loadReposFile", () => {
  it("reads port: (the port the app serves its peers on); none = not reachable by peers", async () => {
    const specs = await loadReposFile(
      file(
        "ports.yaml",
        "services:\n  - slug: gh:acme/api\n    port: 8080\n  - slug: gh:acme/worker\n  - gh:acme/plain\n",
      ),
    );
    expect(specs.map((s) => s.port)).toEqual([8080, undefined, undefined]);
    expect("port" in specs[1]!).toBe(false);
  });

  it.each([
    ["0", /port 0 is not a port number \(an integer 1-65535\)/],
    ["65536", /port 65536 is not a port number/],
    ["8080.5", /port 8080.5 is not a port number/],
    ['"8080"', /port "8080" is not a port number/],
    ["-1", /port -1 is not a port number/],
    ["15000", /port 15000 is reserved \(15000, 15001, 9901, 50051/],
    ["15001", /port 15001 is reserved/],
    ["9901", /port 9901 is reserved/],
    ["50051", /port 50051 is reserved/],
  ])("refuses port: %s with a clear error naming the entry", async (value, message) => {
    const err = await loadError(
      `bad-port-${value.replace(/\W/g, "_")}.yaml`,
      `services:\n  - slug: gh:acme/api\n    port: ${value}\n`,
    );
    expect(err.message).toMatch(/entry 1 \(gh:acme\/api\)/);
    expect(err.message).toMatch(message);
    expect(err.hint).toMatch(/port: 8080/);
  });

  it("reads a YAML list of slugs", async () => {
    const specs = await loadReposFile(
      file("list.yaml", "- gh:pypa/sampleproject#main\n- file:./hello\n"),
    );
    expect(specs.map((s) => s.name)).toEqual(["sampleproject", "hello"]);
    expect(specs[0]!.slug).toMatchObject({ kind: "github", owner: "pypa", ref: "main" });
    expect(specs[1]!.slug).toMatchObject({ kind: "file", location: path.join(dir, "hello") });
    expect(specs[1]!.env).toEqual({});
  });

  it("reads {services: [...]} with name, entrypoint (string and list) and env", async () => {
    const specs = await loadReposFile(
      file(
        "services.yaml",
        [
          "services:",
          "  - slug: gh:acme/api#v1",
          "    name: api",
          '    entrypoint: "python  -m api.server"',
          "    env: {PORT: 8080, DEBUG: true, NAME: x}",
          "  - slug: gh:acme/worker",
          "    entrypoint: [python, -c, 'import w; w.run()']",
          "  - gh:acme/plain",
        ].join("\n"),
      ),
    );
    expect(specs[0]).toMatchObject({
      name: "api",
      entrypoint: ["python", "-m", "api.server"],
      env: { PORT: "8080", DEBUG: "true", NAME: "x" },
    });
    expect(specs[1]).toMatchObject({
      name: "worker",
      entrypoint: ["python", "-c", "import w; w.run()"],
    });
    expect(specs[2]).toMatchObject({ name: "plain" });
  });

  it("reads JSON, including {slugs: [...]}", async () => {
    const specs = await loadReposFile(
      file("r.json", JSON.stringify({ slugs: ["gh:a/one", "gh:a/two"] })),
    );
    expect(specs.map((s) => s.name)).toEqual(["one", "two"]);
  });

  it.each([
    ["missing.yaml", null, /repos file .*missing\.yaml not found/],
    ["bad.yaml", "services:\n  - slug: gh:a/b\n   name: x\n", /bad\.yaml:\d+:\d+: invalid YAML/],
    ["tabs.yaml", "services: [gh:a/b\n", /tabs\.yaml:\d+:\d+: invalid YAML/],
    ["dupkey.yaml", "services: []\nservices: []\n", /invalid YAML.*[Mm]ap keys must be unique/],
    ["empty.yaml", "", /no services/],
    ["emptylist.yaml", "services: []\n", /service list is empty/],
    ["scalar.yaml", "hello\n", /expected a list of slugs/],
    ["topkey.yaml", "servics: [gh:a/b]\n", /unknown top-level key 'servics'/],
    ["notlist.yaml", "services: gh:a/b\n", /'services' must be a list/],
    [
      "entrykey.yaml",
      "services:\n  - slug: gh:a/b\n    entrypiont: x\n",
      /entry 1 \(gh:a\/b\): unknown key 'entrypiont'/,
    ],
    ["noslug.yaml", "services:\n  - name: x\n", /entry 1 \(no slug\): 'slug' is required/],
    [
      "badslug.yaml",
      "- gh:a/b\n- gh:a/b#--exec=x\n",
      /badslug\.yaml: entry 2 \(gh:a\/b#--exec=x\): invalid slug .*starts with '-'/,
    ],
    [
      "badname.yaml",
      "services:\n  - {slug: gh:a/b, name: Bad_Name}\n",
      /entry 1 \(gh:a\/b\): name "Bad_Name" is not a DNS label/,
    ],
    ["badenv.yaml", "services:\n  - {slug: gh:a/b, env: {1X: y}}\n", /env name '1X'/],
    ["badenv2.yaml", "services:\n  - {slug: gh:a/b, env: {X: [1]}}\n", /env X must be a string/],
    [
      "badep.yaml",
      "services:\n  - {slug: gh:a/b, entrypoint: 42}\n",
      /entrypoint must be a string or a list/,
    ],
    ["emptyep.yaml", "services:\n  - {slug: gh:a/b, entrypoint: '  '}\n", /entrypoint is empty/],
    [
      "dup.yaml",
      "- gh:a/app\n- gh:b/app\n",
      /entries 0 \(gh:a\/app\) and 1 \(gh:b\/app\) both have the service name 'app'/,
    ],
    ["slugsobj.yaml", "slugs: [{slug: gh:a/b}]\n", /'slugs' must be a list of slug strings/],
    ["both.yaml", "slugs: [gh:a/b]\nservices: [gh:a/c]\n", /either 'services' or 'slugs'/],
  ])("%s: clear error naming the file and entry", async (name, text, problem) => {
    const err =
      text === null
        ? await loadReposFile(path.join(dir, name)).then(
            () => {
              throw new Error("expected an error");
            },
            (e: UsageError) => e,
          )
        : await loadError(name, text);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(problem);
    expect(err.message).toContain(name);
  });

  it("a duplicate name is resolved by an explicit name:", async () => {
    const specs = await loadReposFile(
      file("dupok.yaml", "services:\n  - gh:a/app\n  - {slug: gh:b/app, name: app-b}\n"),
    );
    expect(specs.map((s) => s.name)).toEqual(["app", "app-b"]);
  });

  it("YAML anchors cannot blow up (alias limit)", async () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
      );
    const err = await loadError("bomb.yaml", bomb.join("\n") + "\n");
    expect(err.message).toMatch(/bomb\.yaml/);
  });
});

describe("parseServiceList (API bodies)", () => {
  it("names the origin and honours allowFile=false", () => {
    expect(() =>
      parseServiceList({ slugs: ["file:/etc"] }, "request body", "/", { allowFile: false }),
    ).toThrow(/request body: entry 1 \(file:\/etc\): invalid slug .*not accepted here/);
    expect(parseServiceList({ services: [{ slug: "gh:a/b" }] }, "request body", "/")[0]!.name).toBe(
      "b",
    );
  });
});

describe("UsageError.field names the failing part of the document", () => {
  const fieldOf = (doc: unknown): string | undefined => {
    try {
      parseServiceList(doc, "request body", dir);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      return (err as UsageError).field;
    }
    throw new Error("expected a UsageError");
  };
  it.each([
    ["bad slug in slugs", { slugs: ["gh:a/b", "a/b"] }, "slugs.1"],
    [
      "bad slug in services",
      { services: [{ slug: "gh:a/b" }, { slug: "nope" }] },
      "services.1.slug",
    ],
    ["missing slug", { services: [{ name: "x" }] }, "services.0.slug"],
    ["bad name", { services: [{ slug: "gh:a/b", name: "UPPER" }] }, "services.0.name"],
    ["unknown entry key", { services: [{ slug: "gh:a/b", colour: 1 }] }, "services.0.colour"],
    ["reserved port", { services: [{ slug: "gh:a/b", port: 15000 }] }, "services.0.port"],
    ["bad env", { services: [{ slug: "gh:a/b", env: { "1X": "v" } }] }, "services.0.env"],
    ["bad port", { services: [{ slug: "gh:a/b", port: "x" }] }, "services.0.port"],
    ["bad entrypoint", { services: [{ slug: "gh:a/b", entrypoint: 3 }] }, "services.0.entrypoint"],
    ["duplicate names (slugs)", { slugs: ["gh:a/api", "gh:b/api"] }, "slugs.1"],
    [
      "duplicate names (services)",
      { services: [{ slug: "gh:a/api" }, { slug: "gh:b/api" }] },
      "services.1.name",
    ],
    ["bare list", ["gh:a/b", "::"], "1"],
    ["top level", { other: [] }, undefined],
  ])("%s", (_name, doc, field) => {
    expect(fieldOf(doc)).toBe(field);
  });
});
