import { mkdir, mkdtemp, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Parser, type ReadEntry } from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { collectDir, tarStream, type TarEntry } from "../../src/image/context.js";
import { renderDockerfile, TEMPLATE_FILE } from "../../src/image/dockerfile.js";
import { isIgnored, parseDockerignore } from "../../src/image/dockerignore.js";
import { firstOfPrefix, sourceUrl } from "../../src/image/build.js";
import { runnerVersion } from "../../src/image/tag.js";
import { readFile } from "node:fs/promises";
import {
  appRequirements,
  runnerRequirements,
  WheelhouseError,
} from "../../src/image/wheelhouse.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-dockerize-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("renderDockerfile", () => {
  it("renders the argv as a JSON exec-form ENTRYPOINT behind the runner", async () => {
    const template = await readFile(TEMPLATE_FILE, "utf8");
    const argv = ["python", "-c", 'print("a $HOME \\\\ b")\nimport x', "[x]"];
    const out = renderDockerfile(template, { argv });
    const line = out.split("\n").find((l) => l.startsWith("ENTRYPOINT "))!;
    expect(JSON.parse(line.slice("ENTRYPOINT ".length))).toEqual([
      "/opt/iac-runner/bin/python",
      "-m",
      "iac_runner",
      "--",
      ...argv,
    ]);
    expect(out).not.toContain("ENTRYPOINT {{");
    expect(out).toMatch(/^FROM \$\{BASE_IMAGE\}$/m);
    expect(out).toMatch(/^USER 10001:10001$/m);
    expect(out).toMatch(/^EXPOSE 50051 15000$/m);
  });

  it("renders the project's install step only when the entrypoint needs the project installed", async () => {
    const template = await readFile(TEMPLATE_FILE, "utf8");
    const plain = renderDockerfile(template, { argv: ["python", "main.py"] });
    const installed = renderDockerfile(template, { argv: ["hello"], installProject: true });
    for (const out of [plain, installed]) {
      expect(out).not.toMatch(/^#\{\{/m);
      const steps = out.split("\n").filter((l) => !l.startsWith("#"));
      expect(steps.join("\n")).not.toContain("{{");
      // One install.py run, one pip removal: the final image gets the venv, never pip.
      expect(out.match(/app-otel\/install\.py/g)).toHaveLength(1);
      expect(out).toMatch(/app-otel\/install\.py "\$\{IAC_TELEMETRY\}" --drop-pip \$idx$/m);
    }
    expect(plain).not.toContain("/tmp/iac-build");
    expect(plain).not.toContain("IAC_VERSION_VAR");
    expect(installed).toMatch(/^COPY app\/ \/tmp\/iac-build\/$/m);
    expect(installed).toContain('"${IAC_VERSION_VAR}=${IAC_VERSION}"');
  });

  it("keeps the final stage's per-app steps last: ENTRYPOINT, COPY app/, one LABEL", async () => {
    const template = await readFile(TEMPLATE_FILE, "utf8");
    const out = renderDockerfile(template, { argv: ["python", "main.py"] });
    const finalStage = out.slice(out.lastIndexOf("\nFROM ")).split("\n");
    const steps = finalStage
      .filter((l) => /^[A-Z]+ /.test(l))
      .map((l) => l.split(" ")[0]! + (l.startsWith("COPY ") ? ` ${l.split(" ").at(-1)}` : ""));
    expect(steps.slice(-4)).toEqual([
      "COPY /opt/iac-telemetry.json",
      "ENTRYPOINT",
      "COPY /app/",
      "LABEL",
    ]);
    // No wheelhouse reaches the final image.
    expect(finalStage.join("\n")).not.toContain("/opt/iac-wheels");
  });

  it("refuses an unbalanced section", () => {
    expect(() =>
      renderDockerfile("#{{#INSTALL_PROJECT}}\nENTRYPOINT {{ENTRYPOINT_JSON}}", { argv: ["a"] }),
    ).toThrow(/not closed/);
    expect(() =>
      renderDockerfile("#{{/INSTALL_PROJECT}}\nENTRYPOINT {{ENTRYPOINT_JSON}}", { argv: ["a"] }),
    ).toThrow(/closes no section/);
  });

  it("refuses an empty argv and a template without the placeholder", () => {
    expect(() => renderDockerfile("ENTRYPOINT {{ENTRYPOINT_JSON}}", { argv: [] })).toThrow(/empty/);
    expect(() => renderDockerfile("FROM x", { argv: ["a"] })).toThrow(/ENTRYPOINT/);
  });
});

describe(".dockerignore", () => {
  const rules = parseDockerignore(
    [
      "# comment",
      "*.log",
      "/build",
      "**/__pycache__",
      "docs/**/*.md",
      "!docs/keep.md",
      "secret/",
      "tmp?",
    ].join("\n"),
  );
  it.each([
    ["debug.log", true],
    ["sub/debug.log", false],
    ["build", true],
    ["build/out.bin", true],
    ["a/b/__pycache__/x.pyc", true],
    ["docs/a/b.md", true],
    ["docs/keep.md", false],
    ["secret/token", true],
    ["tmp1", true],
    ["tmp12", false],
    ["main.py", false],
  ])("%s ignored=%s", (rel, ignored) => {
    expect(isIgnored(rules, rel)).toBe(ignored);
  });
});

describe(".dockerignore exceptions below an ignored directory (Docker's semantics)", () => {
  it("re-includes a file under an ignored folder, and `*` matches one level only", () => {
    const rules = parseDockerignore("vendor\n!vendor/keep.py\n*\n!*.py\n!vendor\n");
    expect(rules.hasExceptions).toBe(true);
    expect(isIgnored(rules, "README.md")).toBe(true);
    expect(isIgnored(rules, "main.py")).toBe(false);
    expect(isIgnored(rules, "vendor/keep.py")).toBe(false);
    expect(isIgnored(parseDockerignore("*.md\n"), "docs/a.md")).toBe(false);
  });
});

describe("build context tar", () => {
  it("is byte-identical for identical content (fixed mtime and owners)", async () => {
    await writeFile(path.join(dir, "main.py"), "print(1)\n");
    const collect = async (): Promise<Buffer> => {
      const entries: TarEntry[] = [];
      await collectDir(dir, "app/", parseDockerignore(""), entries);
      const chunks: Buffer[] = [];
      for await (const chunk of tarStream(entries)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    };
    const first = await collect();
    await new Promise((r) => setTimeout(r, 1100));
    await writeFile(path.join(dir, "main.py"), "print(1)\n");
    expect((await collect()).equals(first)).toBe(true);
    expect(first.length % 512).toBe(0);
  });

  it("walks a repo honouring .dockerignore and writes a tar others can read (long names, modes, links)", async () => {
    const long = `${"d".repeat(60)}/${"f".repeat(70)}.py`;
    await mkdir(path.join(dir, path.dirname(long)), { recursive: true });
    await writeFile(path.join(dir, long), "x = 1\n");
    await writeFile(path.join(dir, "run.sh"), "#!/bin/sh\n");
    await chmod(path.join(dir, "run.sh"), 0o700);
    await writeFile(path.join(dir, "debug.log"), "no");
    await mkdir(path.join(dir, ".git"));
    await writeFile(path.join(dir, ".git", "HEAD"), "ref");
    await symlink("run.sh", path.join(dir, "link"));
    const entries: TarEntry[] = [];
    await collectDir(dir, "app/", parseDockerignore("*.log\n"), entries);

    const seen = new Map<string, { mode: number; type: string; size: number; link?: string }>();
    const parser = new Parser({
      onReadEntry: (e: ReadEntry) => {
        seen.set(e.path, { mode: e.mode ?? 0, type: e.type, size: e.size ?? 0, link: e.linkpath });
        e.resume();
      },
    });
    await new Promise<void>((resolve, reject) => {
      tarStream(entries).on("error", reject).pipe(parser).on("end", resolve).on("error", reject);
    });
    expect(seen.get(`app/${long}`)).toMatchObject({ type: "File", size: 6, mode: 0o644 });
    expect(seen.get("app/run.sh")).toMatchObject({ type: "File", mode: 0o755 });
    expect(seen.get("app/link")).toMatchObject({ type: "SymbolicLink", link: "run.sh" });
    expect([...seen.keys()].some((k) => k.includes(".git") || k.endsWith(".log"))).toBe(false);
  });
});

describe("app requirements", () => {
  it("inlines -r includes, drops index options with a warning, adds the project's deps; build requirements only when installing", async () => {
    await mkdir(path.join(dir, "req"));
    await writeFile(
      path.join(dir, "requirements.txt"),
      "-r req/base.txt\nrequests==2.0  # pin\n--index-url https://x\n",
    );
    await writeFile(path.join(dir, "req", "base.txt"), "attrs>=20 \\\n  ; python_version >= '3'\n");
    await writeFile(
      path.join(dir, "pyproject.toml"),
      '[build-system]\nrequires = ["hatchling"]\n[project]\nname = "x"\ndependencies = ["click>=8"]\n',
    );
    const withProject = await appRequirements({ dir }, { installProject: true });
    expect(withProject.text.trim().split("\n")).toEqual([
      "attrs>=20    ; python_version >= '3'",
      "requests==2.0",
      "click>=8",
    ]);
    expect(withProject.buildText).toBe("hatchling\n");
    expect(withProject.warnings.join()).toMatch(/--index-url/);
    // A main.py next to a pyproject.toml still needs the project's dependencies; not its build.
    const without = await appRequirements({ dir }, { installProject: false });
    expect(without.text).toContain("click>=8");
    expect(without.buildText).toBe("");
    expect(
      await appRequirements({ dir: path.join(dir, "req") }, { installProject: false }),
    ).toMatchObject({
      text: "",
    });
  });

  it.each([
    ["-e .", /editable/],
    ["git+https://example.com/x.git", /URL, path or VCS/],
    ["./vendor/pkg", /URL, path or VCS/],
    ["pkg @ https://example.com/p.whl", /URL, path or VCS/],
    ["-r ../../etc/passwd", /outside the repository/],
  ])("rejects %s", async (line, re) => {
    await writeFile(path.join(dir, "requirements.txt"), `${line}\n`);
    await expect(appRequirements({ dir }, { installProject: false })).rejects.toThrow(re);
    await expect(appRequirements({ dir }, { installProject: false })).rejects.toBeInstanceOf(
      WheelhouseError,
    );
  });
});

describe("runner identity", () => {
  it("hashes the runner content stably and pins the build tools", async () => {
    expect(await runnerVersion()).toMatch(/^[0-9a-f]{16}$/);
    expect(await runnerVersion()).toBe(await runnerVersion());
    const reqs = await runnerRequirements();
    expect(reqs).toMatch(/^grpcio==/m);
    expect(reqs).toMatch(/^setuptools==/m);
    expect(reqs).not.toMatch(/#/);
  });

  it("derives the OCI source URL from the slug", () => {
    const github = { apiUrl: "https://api.github.com", serverUrl: "https://github.com" };
    expect(sourceUrl({ github }, { raw: "gh:o/r", kind: "github", owner: "o", repo: "r" })).toBe(
      "https://github.com/o/r",
    );
    expect(sourceUrl({ github }, { raw: "file:/x", kind: "file", repo: "x", location: "/x" })).toBe(
      "file:///x",
    );
  });
});

describe("firstOfPrefix (builds that share a layer prefix)", () => {
  it("runs the first build of a prefix alone, the others after it, later ones at once", async () => {
    const log: string[] = [];
    let releaseFirst!: () => void;
    const first = firstOfPrefix(
      "k",
      () => undefined,
      async () => {
        log.push("first start");
        await new Promise<void>((r) => (releaseFirst = r));
        log.push("first end");
      },
    );
    const waits: string[] = [];
    const second = firstOfPrefix(
      "k",
      (l) => waits.push(l),
      async () => log.push("second"),
    );
    const other = firstOfPrefix(
      "other",
      () => undefined,
      async () => log.push("other prefix"),
    );
    await other;
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(["first start", "other prefix"]);
    releaseFirst();
    await Promise.all([first, second]);
    expect(log).toEqual(["first start", "other prefix", "first end", "second"]);
    expect(waits[0]).toMatch(/same requirements/);
    await firstOfPrefix(
      "k",
      () => log.push("waited"),
      async () => log.push("third"),
    );
    expect(log.at(-1)).toBe("third");
  });

  it("lets the others go when the first build fails, and runs unkeyed builds at once", async () => {
    let fail!: (e: Error) => void;
    const first = firstOfPrefix(
      "f",
      () => undefined,
      () => new Promise<void>((_, rej) => (fail = rej)),
    );
    const second = firstOfPrefix(
      "f",
      () => undefined,
      async () => "ok",
    );
    expect(
      await firstOfPrefix(
        undefined,
        () => undefined,
        async () => "now",
      ),
    ).toBe("now");
    fail(new Error("boom"));
    await expect(first).rejects.toThrow("boom");
    expect(await second).toBe("ok");
  });
});
