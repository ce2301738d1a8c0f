// `make bootstrap` links `iac` into a bin dir on PATH (scripts/bootstrap.sh cli): a bare `iac`
// then works in a new shell from any directory; re-running is idempotent; a foreign file of
// that name is never replaced.
import { execFile } from "node:child_process";
import { mkdtemp, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function link(binDir: string): Promise<string> {
  const { stderr } = await run("bash", [path.join(ROOT, "scripts/bootstrap.sh"), "cli"], {
    env: { ...process.env, IAC_BIN_DIR: binDir, PATH: `${binDir}:${process.env.PATH}` },
  });
  return stderr;
}

describe("iac on PATH (scripts/bootstrap.sh cli)", () => {
  it("links bin/iac.js, says how to undo it, and a bare `iac` works in a new shell elsewhere", async () => {
    const bin = await mkdtemp(path.join(tmpdir(), "iac-bin-"));
    dirs.push(bin);
    const said = await link(bin);
    expect(said).toContain(`linked ${bin}/iac -> ${ROOT}/bin/iac.js`);
    expect(said).toContain(`undo: rm ${bin}/iac`);
    expect(await readlink(path.join(bin, "iac"))).toBe(path.join(ROOT, "bin/iac.js"));
    const { stdout } = await run("bash", ["-c", "cd / && iac --version && iac status --help"], {
      env: {
        HOME: process.env.HOME,
        PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
      },
    });
    expect(stdout).toMatch(/^0\.1\.0\n/);
    expect(stdout).toContain("every project on this Docker engine");
    expect(await link(bin)).toContain("(up to date)");
  });

  it("leaves a foreign `iac` alone", async () => {
    const bin = await mkdtemp(path.join(tmpdir(), "iac-bin-"));
    dirs.push(bin);
    await writeFile(path.join(bin, "iac"), "#!/bin/sh\necho mine\n", { mode: 0o755 });
    expect(await link(bin)).toContain("left alone");
    const { stdout } = await run(path.join(bin, "iac"), []);
    expect(stdout).toBe("mine\n");
  });
});
