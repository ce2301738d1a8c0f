import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, defaultSocketPath, loadConfig } from "../../src/kernel/config.js";

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
    expect(c.stateDir).toBe("/work/x/.iac");
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
