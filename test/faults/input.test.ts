// Scenarios 6-7 of issue 18 (input and reporting): an oversized repos file and a `file:` slug
// with a space are rejected up front with exit 2, before anything is fetched or built; a deploy
// in which terraform never ran does not claim "terraform: no changes".
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProject } from "./harness.js";

const p = new FaultProject();

beforeAll(async () => {
  await p.setup({});
});
afterAll(async () => {
  await p.cleanup();
});

describe("fault: unbounded or malformed input", () => {
  it("a repos file over the cap (50, IAC_MAX_SERVICES) is refused before anything is built", async () => {
    const lines = ["services:"];
    for (let i = 0; i < 51; i++) lines.push(`  - slug: gh:acme/repo${i}`);
    await writeFile(path.join(p.work, "big.yaml"), lines.join("\n") + "\n");
    const res = await p.iac(["deploy", "--file", "big.yaml"]);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/51 services.*at most 50/);
    expect(res.stderr).toMatch(/IAC_MAX_SERVICES/);
    expect(res.stderr).not.toMatch(/fetch|build/);
  });

  it("a file: slug with a space is rejected up front with exit 2", async () => {
    await mkdir(path.join(p.work, "my app"));
    await writeFile(path.join(p.work, "my app", "main.py"), "def main():\n    return 0\n");
    await writeFile(path.join(p.work, "space.yaml"), "services:\n  - slug: file:my app\n");
    const res = await p.iac(["deploy", "--file", "space.yaml"]);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/file:my app.*space/);
  });

  it("Docker unreachable is reported as that, with the DOCKER_HOST in use and the fix", async () => {
    const sock = path.join(p.work, "no-docker.sock");
    await writeFile(path.join(p.work, "one.yaml"), "services:\n  - slug: gh:acme/one\n");
    const res = await p.iac(["deploy", "--file", "one.yaml"], { DOCKER_HOST: `unix://${sock}` });
    // exit 2 (issue 17): the environment needs fixing, like a configuration error
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^iac: error: /m);
    expect(res.stderr).toMatch(new RegExp(`Docker engine not reachable at ${sock}`));
    expect(res.stderr).toMatch(new RegExp(`is Docker running\\? DOCKER_HOST=unix://${sock}`));
  });

  it("when no service could be prepared, terraform did not run and is not said to have", async () => {
    await mkdir(path.join(p.work, "empty-repo"));
    await writeFile(path.join(p.work, "empty-repo", "README.md"), "nothing to run\n");
    await writeFile(path.join(p.work, "none.yaml"), "services:\n  - slug: file:empty-repo\n");
    const res = await p.iac(["deploy", "--file", "none.yaml"]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).not.toMatch(/terraform: no changes/);
    expect(res.stderr).toMatch(/nothing to apply/);
  });
});
