import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  defaultSocketPath,
  loadConfig,
  loadSystemConfig,
  readBootstrapRecord,
  readDotEnv,
} from "../../src/kernel/config.js";
import { writeBootstrapRecord } from "../../src/image/runtime-images.js";

describe("loadConfig", () => {
  it("applies defaults from DESIGN.md", () => {
    const c = loadConfig({}, {}, "/work/x");
    expect(c.github).toEqual({
      apiUrl: "https://api.github.com",
      serverUrl: "https://github.com",
      token: undefined,
    });
    expect(c.baseImage).toBe("python:3.11-slim");
    expect(c.sidecar).toBe("envoy");
    expect(c.network).toBe("iacnet");
    expect(c.project).toBe("iac");
    expect(c.httpAddr).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(c.stateDir).toBe(path.join(homedir(), ".local", "state", "iac-wrapper"));
    expect(c.legacyStateDir).toBe("/work/x/.iac");
    expect(c.keepReleases).toBe(5);
    expect(c.secretsDir).toBe("/work/x/secrets");
    expect(c.supabase.adminRoles).toEqual(["iac-admin"]);
  });

  it("flags override env, env overrides defaults", () => {
    const c = loadConfig(
      { IAC_PROJECT: "fromenv", IAC_SIDECAR: "none" },
      { IAC_PROJECT: "fromflag" },
    );
    expect(c.project).toBe("fromflag");
    expect(c.sidecar).toBe("none");
  });

  it.each([
    ["IAC_SIDECAR", "istio", /IAC_SIDECAR="istio".*envoy.*none/],
    ["IAC_PROJECT", "Bad_Name", /IAC_PROJECT="Bad_Name": expected a DNS label/],
    ["IAC_HTTP_ADDR", "8080", /IAC_HTTP_ADDR="8080": expected host:port/],
    ["IAC_HTTP_ADDR", "127.0.0.1:99999", /port must be <= 65535/],
    ["GITHUB_API_URL", "ftp://x", /GITHUB_API_URL="ftp:\/\/x"/],
    ["IAC_CONCURRENCY", "0", /IAC_CONCURRENCY="0": expected > 0/],
    ["IAC_SOCKET_REQUIRE_AUTH", "maybe", /IAC_SOCKET_REQUIRE_AUTH/],
  ])("rejects %s=%s naming the variable and what is allowed", (key, value, pattern) => {
    expect(() => loadConfig({ [key]: value })).toThrowError(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrowError(pattern);
  });

  it("never echoes secret values in errors", () => {
    expect(() =>
      loadConfig({ SUPABASE_SERVICE_ROLE_KEY: "", GITHUB_TOKEN: "", SUPABASE_URL: "nope" }),
    ).toThrow(/SUPABASE_URL/);
    try {
      loadConfig({ GITHUB_API_URL: "bad", GITHUB_TOKEN: "ghp_secret" });
    } catch (err) {
      expect(String(err)).not.toContain("ghp_secret");
    }
  });

  it("strips trailing slashes from URLs and parses admin roles", () => {
    const c = loadConfig({ SUPABASE_URL: "http://127.0.0.1:5432/", IAC_ADMIN_ROLES: "a, b,,c" });
    expect(c.supabase.url).toBe("http://127.0.0.1:5432");
    expect(c.supabase.adminRoles).toEqual(["a", "b", "c"]);
  });

  it("puts the socket in $XDG_RUNTIME_DIR when /run is not writable", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-cfg-"));
    try {
      expect(defaultSocketPath(dir, "/nonexistent-run-dir")).toBe(
        path.join(dir, "iac_wrapper.sock"),
      );
      expect(defaultSocketPath(undefined, dir)).toBe(path.join(dir, "iac_wrapper.sock"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("uses terraform from PATH, else the one bootstrap built into the cache", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-cfg-"));
    try {
      const { mkdir, writeFile } = await import("node:fs/promises");
      await mkdir(path.join(dir, "bin"));
      await writeFile(path.join(dir, "bin", "terraform"), "#!/bin/sh\n", { mode: 0o755 });
      const emptyPath = loadConfig({ PATH: "/nonexistent", IAC_CACHE_DIR: dir });
      expect(emptyPath.terraform.bin).toBe(path.join(dir, "bin", "terraform"));
      const onPath = loadConfig({ PATH: path.join(dir, "bin"), IAC_CACHE_DIR: "/nonexistent" });
      expect(onPath.terraform.bin).toBe("terraform");
      expect(loadConfig({ IAC_TERRAFORM_BIN: "/opt/tofu" }).terraform.bin).toBe("/opt/tofu");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("setting layers: flags > environment > .env > bootstrap record > defaults", () => {
  const layers = {
    dotenv: {
      IAC_BASE_IMAGE: "dotenv/base:1",
      IAC_ENVOY_IMAGE: "dotenv/envoy:1",
      IAC_NETWORK: "dotnet",
    },
    bootstrap: { IAC_BASE_IMAGE: "rec/base:1", IAC_ENVOY_IMAGE: "rec/envoy:1" },
  };

  it("each layer wins over the ones below it, and the origin is kept", () => {
    const c = loadConfig(
      { IAC_ENVOY_IMAGE: "env/envoy:1", IAC_NETWORK: "envnet" },
      { IAC_NETWORK: "flagnet" },
      "/w",
      layers,
    );
    expect(c.network).toBe("flagnet");
    expect(c.envoyImage).toBe("env/envoy:1");
    expect(c.baseImage).toBe("dotenv/base:1");
    expect(c.origins).toMatchObject({
      IAC_NETWORK: "flag",
      IAC_ENVOY_IMAGE: "env",
      IAC_BASE_IMAGE: ".env",
      IAC_PROJECT: "default",
    });
    const rec = loadConfig({}, {}, "/w", { bootstrap: layers.bootstrap });
    expect([rec.baseImage, rec.envoyImage]).toEqual(["rec/base:1", "rec/envoy:1"]);
    expect(rec.origins.IAC_BASE_IMAGE).toBe("bootstrap");
    const none = loadConfig({}, {}, "/w");
    expect([none.baseImage, none.envoyImage]).toEqual([
      "python:3.11-slim",
      "envoyproxy/envoy:v1.40.0",
    ]);
  });

  it("an empty value falls through to the next layer", () => {
    const c = loadConfig({ IAC_BASE_IMAGE: "" }, { IAC_BASE_IMAGE: "" }, "/w", layers);
    expect(c.baseImage).toBe("dotenv/base:1");
  });

  it("a bootstrap record can only supply the image settings", () => {
    const c = loadConfig({}, {}, "/w", {
      bootstrap: { IAC_BASE_IMAGE: "rec/base:1", IAC_SIDECAR: "none" } as never,
    });
    expect(c.sidecar).toBe("envoy");
  });

  it("names the layer a bad value came from", () => {
    expect(() => loadConfig({}, {}, "/w", { dotenv: { IAC_SIDECAR: "istio" } })).toThrow(
      /IAC_SIDECAR="istio" \(from \.env\)/,
    );
  });

  it("loadSystemConfig reads ./.env and the record in the cache dir; --record mode skips the record", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-cfg-"));
    const { writeFile } = await import("node:fs/promises");
    const saved = { ...process.env };
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith("IAC_")) delete process.env[k];
      await writeFile(
        path.join(dir, ".env"),
        `# comment\nIAC_CACHE_DIR=${dir}/cache\nIAC_ENVOY_IMAGE="dot/envoy:2"\n`,
      );
      await writeBootstrapRecord(path.join(dir, "cache"), [
        {
          role: "base",
          requested: "python:3.11-slim",
          image: "iac-local/python:3.11-slim",
          how: "substitute-present",
          reason: "r",
          seconds: 0,
        },
        {
          role: "envoy",
          requested: "x",
          image: "iac-local/envoy:v1.40.0",
          how: "substitute-built",
          reason: "r",
          seconds: 1,
        },
      ]);
      expect(readBootstrapRecord(path.join(dir, "cache"))).toEqual({
        IAC_BASE_IMAGE: "iac-local/python:3.11-slim",
        IAC_ENVOY_IMAGE: "iac-local/envoy:v1.40.0",
      });
      const c = loadSystemConfig({}, { cwd: dir });
      expect(c.cacheDir).toBe(path.join(dir, "cache"));
      expect(c.envoyImage).toBe("dot/envoy:2");
      expect(c.baseImage).toBe("iac-local/python:3.11-slim");
      process.env.IAC_ENVOY_IMAGE = "env/envoy:3";
      expect(loadSystemConfig({}, { cwd: dir }).envoyImage).toBe("env/envoy:3");
      expect(loadSystemConfig({ IAC_ENVOY_IMAGE: "flag/envoy:4" }, { cwd: dir }).envoyImage).toBe(
        "flag/envoy:4",
      );
      const fresh = loadSystemConfig({}, { cwd: dir, bootstrapRecord: false });
      expect(fresh.baseImage).toBe("python:3.11-slim");
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a missing .env or record is empty; a corrupt record is a ConfigError naming the file", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-cfg-"));
    const { writeFile } = await import("node:fs/promises");
    try {
      expect(readDotEnv(path.join(dir, ".env"))).toEqual({});
      expect(readBootstrapRecord(dir)).toEqual({});
      await writeFile(path.join(dir, "bootstrap.json"), "{not json");
      expect(() => readBootstrapRecord(dir)).toThrow(ConfigError);
      expect(() => readBootstrapRecord(dir)).toThrow(/bootstrap\.json.*make bootstrap/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
