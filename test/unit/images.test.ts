// The image order (src/image/runtime-images.ts): present -> docker pull -> local substitute, over a fake
// Docker backend that records what was asked of it. The real backend runs in
// test/integration/images.test.ts and in every bootstrap.
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  describeChoice,
  ensureImage,
  ensureRuntimeImages,
  type ImageBackend,
  ImageError,
  pullArgv,
  recipeArgv,
  recipeId,
  rolesFor,
  SUBSTITUTES,
  substituteFor,
} from "../../src/image/runtime-images.js";

const ENVOY = SUBSTITUTES.find((s) => s.role === "envoy")!;
const BASE = SUBSTITUTES.find((s) => s.role === "base")!;

interface FakeOpts {
  present?: Record<string, Record<string, string>>;
  pullable?: string[];
  pullError?: string;
  buildError?: string;
}

function fake(opts: FakeOpts = {}) {
  const images = new Map(Object.entries(opts.present ?? {}));
  const calls: string[] = [];
  const backend: ImageBackend = {
    async inspect(ref) {
      calls.push(`inspect ${ref}`);
      const labels = images.get(ref);
      return labels ? { labels } : undefined;
    },
    async pull(ref) {
      calls.push(`pull ${ref}`);
      if (!opts.pullable?.includes(ref)) throw new Error(opts.pullError ?? "no such host");
      images.set(ref, {});
    },
    async build(sub, { base, recipeId: id }) {
      calls.push(`build ${sub.local} FROM ${base || "-"}`);
      if (opts.buildError) throw new Error(opts.buildError);
      images.set(sub.local, { "io.iac.recipe": id });
    },
  };
  return { backend, calls };
}

describe("ensureImage: present -> pull -> local substitute", () => {
  it("uses a present image without pulling", async () => {
    const { backend, calls } = fake({ present: { "envoyproxy/envoy:v1.40.0": {} } });
    const c = await ensureImage("envoy", "envoyproxy/envoy:v1.40.0", backend);
    expect(c).toMatchObject({
      image: "envoyproxy/envoy:v1.40.0",
      how: "present",
      reason: "present",
    });
    expect(calls).toEqual(["inspect envoyproxy/envoy:v1.40.0"]);
  });

  it("pulls an absent image and uses it", async () => {
    const { backend, calls } = fake({ pullable: ["python:3.11-slim"] });
    const c = await ensureImage("base", "python:3.11-slim", backend);
    expect(c).toMatchObject({ image: "python:3.11-slim", how: "pulled" });
    expect(c.reason).toMatch(/^pulled in \d+(\.\d)? s$/);
    expect(calls).toEqual(["inspect python:3.11-slim", "pull python:3.11-slim"]);
  });

  it("builds the local substitute only when the pull fails, and says why", async () => {
    const { backend, calls } = fake({ pullError: "dial tcp: lookup registry: no such host" });
    const c = await ensureImage("envoy", ENVOY.official, backend, {
      base: "iac-local/python:3.11-slim",
    });
    expect(c.image).toBe(ENVOY.local);
    expect(c.how).toBe("substitute-built");
    expect(c.pullError).toBe("dial tcp: lookup registry: no such host");
    expect(c.reason).toMatch(
      /^pull of envoyproxy\/envoy:v1\.40\.0 failed \(dial tcp: lookup registry: no such host\) -> built local substitute in [\d.]+ s$/,
    );
    expect(calls).toEqual([
      `inspect ${ENVOY.official}`,
      `pull ${ENVOY.official}`,
      `inspect ${ENVOY.local}`,
      `build ${ENVOY.local} FROM iac-local/python:3.11-slim`,
      `inspect ${ENVOY.local}`,
    ]);
  });

  it("uses a present, current substitute after a failed pull without rebuilding it", async () => {
    const { backend, calls } = fake({
      present: { [ENVOY.local]: { "io.iac.recipe": await recipeId(ENVOY) } },
    });
    const c = await ensureImage("envoy", ENVOY.official, backend);
    expect(c).toMatchObject({ image: ENVOY.local, how: "substitute-present" });
    expect(c.reason).toMatch(/failed \(no such host\) -> local substitute present$/);
    expect(calls.filter((x) => x.startsWith("build"))).toEqual([]);
  });

  it("rebuilds an Envoy substitute built by another recipe (e.g. by hand, unlabelled)", async () => {
    const { backend, calls } = fake({ present: { [ENVOY.local]: {} } });
    const c = await ensureImage("envoy", ENVOY.local, backend, { base: "b" });
    expect(c.how).toBe("substitute-built");
    expect(c.reason).toMatch(/built by another recipe -> rebuilt in/);
    expect(calls).toContain(`build ${ENVOY.local} FROM b`);
  });

  it("keeps a present base substitute whatever its recipe (app image tags depend on its id)", async () => {
    const { backend, calls } = fake({ present: { [BASE.local]: {} } });
    const c = await ensureImage("base", BASE.local, backend);
    expect(c).toMatchObject({ image: BASE.local, how: "substitute-present" });
    expect(c.reason).toBe("present (local substitute for python:3.11-slim, never pulled)");
    expect(calls).toEqual([`inspect ${BASE.local}`]);
  });

  it("never pulls a substitute's own name (nobody publishes iac-local/*)", async () => {
    const { backend, calls } = fake();
    const c = await ensureImage("base", BASE.local, backend);
    expect(c.how).toBe("substitute-built");
    expect(c.reason).toMatch(/^absent -> built local substitute in/);
    expect(calls.some((x) => x.startsWith("pull"))).toBe(false);
  });

  it("fails with both reasons when the pull fails and the substitute cannot be built", async () => {
    const { backend } = fake({ buildError: "debootstrap needs root" });
    const err = await ensureImage("base", BASE.official, backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).message).toBe(
      "base image python:3.11-slim: pull of python:3.11-slim failed (no such host) -> " +
        "building the local substitute iac-local/python:3.11-slim failed: debootstrap needs root",
    );
    expect((err as ImageError).hint).toMatch(/python:3\.11-slim available/);
  });

  it("an image without a substitute that cannot be pulled fails naming it and the reason", async () => {
    const { backend, calls } = fake({ pullError: "pull access denied" });
    const err = await ensureImage("envoy", "acme/envoy:9", backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).message).toBe(
      "envoy image acme/envoy:9 is not present locally and `docker pull` failed: pull access denied",
    );
    expect((err as ImageError).hint).toContain("envoyproxy/envoy:v1.40.0");
    expect(calls.some((x) => x.startsWith("build"))).toBe(false);
  });
});

describe("ensureRuntimeImages", () => {
  const config = { baseImage: BASE.official, envoyImage: ENVOY.official };

  it("resolves the base first and builds the Envoy substitute on the base actually used", async () => {
    const { backend, calls } = fake({ pullable: [BASE.official] });
    const seen: string[] = [];
    const { config: out, choices } = await ensureRuntimeImages(
      config,
      ["base", "envoy"],
      backend,
      (c) => seen.push(c.role),
    );
    expect(out).toEqual({ baseImage: BASE.official, envoyImage: ENVOY.local });
    expect(choices.map((c) => c.how)).toEqual(["pulled", "substitute-built"]);
    expect(seen).toEqual(["base", "envoy"]);
    expect(calls).toContain(`build ${ENVOY.local} FROM ${BASE.official}`);
  });

  it("with IAC_SIDECAR=none only the base is needed", async () => {
    expect(rolesFor({ sidecar: "none" })).toEqual(["base"]);
    expect(rolesFor({ sidecar: "envoy" })).toEqual(["base", "envoy"]);
    const { backend, calls } = fake({ present: { [BASE.official]: {} } });
    const { config: out, choices } = await ensureRuntimeImages(config, ["base"], backend);
    expect(out).toEqual(config);
    expect(choices.map((c) => c.role)).toEqual(["base"]);
    expect(calls).toEqual([`inspect ${BASE.official}`]);
  });
});

describe("names, argv and messages", () => {
  it("maps both official images to their local substitutes, by either name", () => {
    expect(substituteFor("envoy", "envoyproxy/envoy:v1.40.0")?.local).toBe(
      "iac-local/envoy:v1.40.0",
    );
    expect(substituteFor("envoy", "iac-local/envoy:v1.40.0")?.official).toBe(
      "envoyproxy/envoy:v1.40.0",
    );
    expect(substituteFor("base", "python:3.11-slim")?.local).toBe("iac-local/python:3.11-slim");
    expect(substituteFor("base", "envoyproxy/envoy:v1.40.0")).toBeUndefined();
    expect(substituteFor("envoy", "envoyproxy/envoy:v1.39.0")).toBeUndefined();
  });

  it("pull and recipe argv (argv arrays, never a shell string)", () => {
    expect(pullArgv("python:3.11-slim")).toEqual(["docker", "pull", "python:3.11-slim"]);
    const cfg = { cacheDir: "/c", debianMirror: "http://mirror/debian" };
    const envoy = recipeArgv(ENVOY, cfg, { base: "b:1", recipeId: "r1" });
    expect(envoy[0]).toBe("bash");
    expect(envoy[1]!.endsWith(path.join("images", "envoy", "build.sh"))).toBe(true);
    expect(envoy.slice(2)).toEqual(["iac-local/envoy:v1.40.0", "b:1", "/c", "r1"]);
    const base = recipeArgv(BASE, cfg, { base: "", recipeId: "r2" });
    expect(base[1]!.endsWith(path.join("images", "base", "build.sh"))).toBe(true);
    expect(base.slice(2)).toEqual([
      "iac-local/python:3.11-slim",
      "http://mirror/debian",
      "/c/debootstrap.log",
      "r2",
    ]);
  });

  it("the recipe id follows the recipe's files", async () => {
    expect(await recipeId(ENVOY)).toMatch(/^[0-9a-f]{16}$/);
    expect(await recipeId(ENVOY)).not.toBe(await recipeId(BASE));
  });

  it("describes the choice with where the configured name came from", () => {
    const c = {
      role: "envoy" as const,
      requested: ENVOY.local,
      image: ENVOY.local,
      how: "substitute-present" as const,
      reason: "present (local substitute for envoyproxy/envoy:v1.40.0, never pulled)",
      seconds: 0,
    };
    expect(describeChoice(c)).toBe(
      "envoy image iac-local/envoy:v1.40.0: present (local substitute for envoyproxy/envoy:v1.40.0, never pulled)",
    );
    expect(describeChoice(c, { IAC_ENVOY_IMAGE: "bootstrap" })).toContain(
      "iac-local/envoy:v1.40.0 (IAC_ENVOY_IMAGE recorded by make bootstrap): present",
    );
    expect(describeChoice(c, { IAC_ENVOY_IMAGE: ".env" })).toContain("(IAC_ENVOY_IMAGE from .env)");
  });
});
