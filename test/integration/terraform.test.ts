// terraform.ts against the real terraform binary: clear, actionable errors when terraform
// or the docker provider cannot be found, and a real init + validate of the module copy.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/kernel/config.js";
import { ToolError } from "../../src/kernel/errors.js";
import { syncModule } from "../../src/stack/tfvars.js";
import * as tf from "../../src/stack/terraform.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-tf-"));
  await syncModule(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("terraform runner", () => {
  it("reports a missing terraform binary with how to get one", async () => {
    const config = loadConfig({ ...process.env, IAC_TERRAFORM_BIN: "/nonexistent/terraform" });
    const err = await tf.init({ config, dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as ToolError).message).toMatch(
      /terraform not found \(tried '\/nonexistent\/terraform'\)/,
    );
    expect((err as ToolError).hint).toMatch(/make bootstrap/);
  });

  it("reports a provider that cannot be installed with how to get it", async () => {
    const rc = path.join(dir, "empty.tfrc");
    const emptyMirror = path.join(dir, "empty-mirror");
    await writeFile(
      rc,
      `provider_installation {\n  filesystem_mirror {\n    path = "${emptyMirror}"\n  }\n}\n`,
    );
    const other = await mkdtemp(path.join(tmpdir(), "iac-tf-noprov-"));
    try {
      await syncModule(other);
      const config = loadConfig({ ...process.env, IAC_TF_CLI_CONFIG: rc });
      const err = await tf.init({ config, dir: other }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ToolError);
      expect((err as ToolError).message).toMatch(/could not find the kreuzwerker\/docker provider/);
      expect((err as ToolError).hint).toMatch(/make bootstrap/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it("initialises the module copy from the local mirror and reports its version", async () => {
    const config = loadConfig(process.env);
    expect(config.terraform.cliConfig, "run `make bootstrap` first").toBeDefined();
    await tf.init({ config, dir });
    expect(await tf.terraformVersion(config)).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("re-locks when the locally built provider changed since the lock file was written", async () => {
    const config = loadConfig(process.env);
    const other = await mkdtemp(path.join(tmpdir(), "iac-tf-relock-"));
    try {
      await syncModule(other);
      await writeFile(
        path.join(other, ".terraform.lock.hcl"),
        [
          'provider "registry.terraform.io/kreuzwerker/docker" {',
          '  version     = "4.6.0"',
          '  constraints = "4.6.0"',
          '  hashes = ["h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]',
          "}",
          "",
        ].join("\n"),
      );
      const lines: string[] = [];
      await tf.init({ config, dir: other, onLine: (l) => lines.push(l) });
      expect(lines.join("\n")).toMatch(/re-locking/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
