// Issue 11: one table of hostile inputs across every entry point (archives, slugs, repos
// files, tokens, request bodies, settings, sockets, terminal text, peer certificates). Every
// row asserts a clear, specific error (never a crash or a 500) and that nothing was written
// outside its place. No Docker: real git, real local GitHub and Supabase stand-ins, temp dirs.
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { chmod, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Authenticator } from "../../src/api/auth.js";
import type { Pipeline } from "../../src/api/pipeline.js";
import { createServer, type ApiServer } from "../../src/api/server.js";
import { prepareSocketPath } from "../../src/api/socket.js";
import { stripControls } from "../../src/cli/termtext.js";
import { parseServiceList } from "../../src/intake/repofile.js";
import { parseSlug } from "../../src/intake/slug.js";
import { type Config, ConfigError, loadConfig } from "../../src/kernel/config.js";
import { UsageError } from "../../src/kernel/errors.js";
import { peerIdentityProblem } from "../../src/runtime/client.js";
import { FetchError, fetchSource } from "../../src/source/fetch.js";
import { checkHost, isInternalAddress } from "../../src/source/netpolicy.js";
import { type GitHubServer, startGitHubServer } from "../helpers/github-server.js";
import { createGitRepo, type FixtureRepo } from "../helpers/git-fixtures.js";
import { type FakeSupabase, startFakeSupabase, strayKey } from "../helpers/supabase-server.js";
import { type TarEntry, buildTar, buildTarGz } from "../helpers/tar-builder.js";

const tmp = mkdtempSync(path.join(tmpdir(), "iac-hostile-table-"));
const outside = path.join(tmp, "outside"); // a folder no row may write into
let srv: GitHubServer;
let sb: FakeSupabase;
let repo: FixtureRepo;
let n = 0;

const config = (env: Record<string, string> = {}): Config =>
  loadConfig({
    GITHUB_API_URL: srv.apiUrl,
    GITHUB_SERVER_URL: srv.serverUrl,
    IAC_CACHE_DIR: path.join(tmp, `cache-${n++}`),
    IAC_FETCH_TIMEOUT_S: "20",
    IAC_MAX_ARCHIVE_BYTES: "200000",
    IAC_MAX_ARCHIVE_FILES: "50",
    ...env,
  });

beforeAll(async () => {
  await mkdir(outside, { recursive: true });
  srv = await startGitHubServer({});
  sb = await startFakeSupabase();
  repo = await createGitRepo({ "main.py": "print('hi')\n" });
  await srv.addRepo("evil/repo", repo.dir);
});
afterAll(async () => {
  await srv?.close();
  await sb?.close();
  await repo?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// archives (GitHub tarball path): refused with FetchError, the cache and `outside` untouched

const top = "evil-repo-abcdef1";
const T = (...entries: TarEntry[]): TarEntry[] => [{ path: `${top}/`, type: "5" }, ...entries];
const archives: Array<[string, () => Buffer, string, RegExp]> = [
  [
    "traversal",
    () => buildTarGz(T({ path: `${top}/../../x`, content: "x" })),
    "unsafe-archive",
    /'\.\.'/,
  ],
  [
    "absolute path",
    () => buildTarGz(T({ path: `${outside}/abs.txt`, content: "x" })),
    "unsafe-archive",
    /absolute path/,
  ],
  [
    "absolute link",
    () => buildTarGz(T({ path: `${top}/l`, type: "2", linkpath: "/etc/passwd" })),
    "unsafe-archive",
    /absolute/,
  ],
  [
    "chained links that climb out",
    () =>
      buildTarGz(
        T(
          { path: `${top}/sub/`, type: "5" },
          { path: `${top}/sub/x`, type: "2", linkpath: ".." },
          { path: `${top}/a`, type: "2", linkpath: "sub/x/sub/x/../../../outside" },
        ),
      ),
    "unsafe-archive",
    /symbolic link 'a' resolves outside/,
  ],
  [
    "dangling link",
    () => buildTarGz(T({ path: `${top}/d`, type: "2", linkpath: "later/file" })),
    "unsafe-archive",
    /dangling/,
  ],
  [
    "hard link",
    () => buildTarGz(T({ path: `${top}/h`, type: "1", linkpath: "/etc/passwd" })),
    "unsafe-archive",
    /hard link/,
  ],
  [
    "character device",
    () => buildTarGz(T({ path: `${top}/null`, type: "3" })),
    "unsafe-archive",
    /device file/,
  ],
  [
    "zip bomb (compresses 1000:1)",
    () =>
      gzipSync(buildTar(T({ path: `${top}/zeros`, content: Buffer.alloc(20_000_000) })), {
        level: 9,
      }),
    "too-large",
    /too large/,
  ],
  [
    "too many entries",
    () =>
      buildTarGz(
        T(...Array.from({ length: 60 }, (_, i) => ({ path: `${top}/f${i}`, content: "" }))),
      ),
    "too-large",
    /more than 50/,
  ],
];

describe("hostile archives", () => {
  it.each(archives)("%s", async (_name, bytes, reason, problem) => {
    const cfg = config();
    srv.tarballOverride.set("evil/repo", bytes());
    let err: unknown;
    try {
      await fetchSource(parseSlug("gh:evil/repo#main"), { config: cfg });
    } catch (e) {
      err = e;
    } finally {
      srv.tarballOverride.delete("evil/repo");
    }
    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).reason).toBe(reason);
    expect((err as Error).message).toMatch(problem);
    expect((err as Error).message).toContain("gh:evil/repo#main");
    const sources = path.join(cfg.cacheDir, "sources");
    expect(existsSync(sources) ? readdirSync(sources) : []).toEqual([]);
    expect(readdirSync(outside)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// slugs, repos files, settings: UsageError / ConfigError naming what is wrong

const usage: Array<[string, () => unknown, RegExp]> = [
  [
    "ref with a bidi override",
    () => parseSlug("gh:acme/app#main\u202e"),
    /control characters|non-ASCII/,
  ],
  ["ref with a homoglyph (Cyrillic а)", () => parseSlug("gh:acme/app#m\u0430in"), /non-ASCII/],
  [
    "ref with a C1 control",
    () => parseSlug("gh:acme/app#ma\u009bin"),
    /control characters|non-ASCII/,
  ],
  ["slug with a zero-width space", () => parseSlug("gh:acme/a\u200bpp"), /control characters/],
  [
    "env sets IAC_LISTEN (would expose the plaintext runner)",
    () =>
      parseServiceList(
        { services: [{ slug: "gh:a/b", env: { IAC_LISTEN: "0.0.0.0:50051" } }] },
        "f",
        "/",
      ),
    /IAC_LISTEN' is reserved/,
  ],
  [
    "env sets IAC_ALLOWED_CALLERS",
    () =>
      parseServiceList(
        { services: [{ slug: "gh:a/b", env: { IAC_ALLOWED_CALLERS: "*" } }] },
        "f",
        "/",
      ),
    /reserved/,
  ],
  [
    "env sets OTEL_EXPORTER_OTLP_ENDPOINT",
    () =>
      parseServiceList(
        { services: [{ slug: "gh:a/b", env: { otel_exporter_otlp_endpoint: "http://evil" } }] },
        "f",
        "/",
      ),
    /reserved/,
  ],
  [
    "env names that differ only in case",
    () =>
      parseServiceList(
        { services: [{ slug: "gh:a/b", env: { Token: "1", TOKEN: "2" } }] },
        "f",
        "/",
      ),
    /differ only in case/,
  ],
  [
    "resources.memory not a size",
    () =>
      parseServiceList({ services: [{ slug: "gh:a/b", resources: { memory: "lots" } }] }, "f", "/"),
    /resources.memory/,
  ],
  [
    "resources.pids out of range",
    () => parseServiceList({ services: [{ slug: "gh:a/b", resources: { pids: 1e9 } }] }, "f", "/"),
    /resources.pids must be between/,
  ],
];

describe("hostile slugs and repos files", () => {
  it.each(usage)("%s", (_name, run, problem) => {
    let err: unknown;
    try {
      run();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(problem);
  });

  it.each([
    [
      "SUPABASE_URL over plain http to a remote host",
      { SUPABASE_URL: "http://auth.example.com" },
      /SUPABASE_URL.*loopback/,
    ],
    ["IAC_PROJECT with a bidi override", { IAC_PROJECT: "demo\u202e" }, /IAC_PROJECT/],
  ])("setting: %s", (_name, env, problem) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(problem);
  });

  it("SUPABASE_URL over http to loopback stays allowed (local development)", () => {
    expect(loadConfig({ SUPABASE_URL: "http://127.0.0.1:54321" }).supabase.url).toBe(
      "http://127.0.0.1:54321",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// internal addresses

describe("internal git hosts", () => {
  it.each([
    ["cloud metadata", "git+https://169.254.169.254/latest/x.git"],
    ["private 10/8", "git+https://10.1.2.3/acme/x.git"],
    ["private 192.168/16", "git+https://192.168.0.10/acme/x.git"],
    ["IPv6 link-local", "git+https://[fe80::1]/acme/x.git"],
    ["loopback", "git+http://127.0.0.1:9/acme/x.git"],
  ])("%s is refused before any connection", async (_name, raw) => {
    const cfg = config();
    const err = await fetchSource(parseSlug(raw), { config: cfg }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).reason).toBe("forbidden-host");
    expect((err as Error).message).toMatch(/internal address/);
    expect((err as FetchError).hint).toMatch(/IAC_ALLOWED_GIT_HOSTS/);
  });

  it("a name that resolves to an internal address is refused too", async () => {
    await expect(
      checkHost("metadata.internal", [], async () => ["169.254.169.254"]),
    ).rejects.toThrow(/internal address \(169\.254\.169\.254/);
    expect(await checkHost("git.example.com", [], async () => ["140.82.121.4"])).toBe(
      "140.82.121.4",
    );
    expect(await checkHost("10.0.0.5", ["10.0.0.5"])).toBeUndefined(); // explicitly allowed
  });

  it.each(["100.64.0.1", "172.31.255.255", "0.0.0.0", "::ffff:10.0.0.1", "fd00::1", "224.0.0.1"])(
    "%s counts as internal",
    (ip) => expect(isInternalAddress(ip)).toBe(true),
  );
});

// ---------------------------------------------------------------------------------------------
// tokens

const admin = { provider: "email", roles: ["iac-admin"] };
describe("hostile tokens", () => {
  const auth = () =>
    new Authenticator({
      supabaseUrl: sb.url,
      serviceRoleKey: sb.secretKey,
      adminRoles: ["iac-admin"],
    });
  it.each([
    [
      "forged signature",
      async () => sb.token({ appMetadata: admin, signWith: await strayKey() }),
      401,
    ],
    ["expired", async () => sb.token({ appMetadata: admin, expiresIn: -600 }), 401],
    ["wrong audience", async () => sb.token({ appMetadata: admin, aud: "anon" }), 401],
    [
      "wrong issuer",
      async () => sb.token({ appMetadata: admin, iss: "https://evil.example/auth/v1" }),
      401,
    ],
    [
      "user_metadata role spoofing",
      async () => sb.token({ userMetadata: { roles: ["iac-admin"] } }),
      403,
    ],
    [
      "app_metadata claimed in the token only",
      async () => {
        const u = sb.addUser({ app_metadata: {} });
        return sb.token({ sub: u.id, appMetadata: admin });
      },
      403,
    ],
    ["not a JWT", async () => "definitely-not-a-jwt", 401],
    ["the anon key", async () => sb.anonKey, 401],
  ])("%s", async (_name, token, status) => {
    const out = await auth().authenticate(`Bearer ${await token()}`, "203.0.113.9");
    expect(out).toMatchObject({ ok: false, status });
    if (!out.ok) {
      expect(out.message).not.toContain(sb.url);
      expect(out.message).not.toMatch(/iac-admin/);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// the API: bodies, streams, operations

describe("hostile API requests", () => {
  let server: ApiServer;
  let base = "";
  let release: () => void = () => {};
  beforeAll(async () => {
    const gate = new Promise<void>((r) => (release = r));
    const pipeline: Pipeline = {
      deploy: async () => {
        await gate;
        return { project: "p", services: [] };
      },
      destroy: async () => ({ removed: [] }),
      rollback: async () => ({ project: "p", services: [], rolled_back_to: 1 }),
      history: async () => [],
      overview: async () => [],
      health: async () => [],
      streamLogs: async () => {},
      controlPlaneHealth: async () => ({ ok: true, checks: {} }),
    };
    server = await createServer({
      config: loadConfig(
        { SUPABASE_URL: sb.url, SUPABASE_SERVICE_ROLE_KEY: sb.secretKey, IAC_LOG_LEVEL: "silent" },
        {},
        tmp,
      ),
      pipeline,
      limits: { maxOperations: 2, maxPerPrincipal: 2, maxStreams: 10 },
      shutdownGraceMs: 50,
    });
    base = (await server.listen({ http: { host: "127.0.0.1", port: 0 }, socketPath: false }))
      .httpUrl!;
  });
  afterAll(async () => {
    release();
    await server?.close();
  });
  const key = () => ({
    authorization: `Bearer ${sb.secretKey}`,
    "content-type": "application/json",
  });
  const deploy = (body: unknown) =>
    fetch(`${base}/deploy`, { method: "POST", headers: key(), body: JSON.stringify(body) });

  it("an oversized body: 413 body_too_large", async () => {
    const res = await fetch(`${base}/deploy`, {
      method: "POST",
      headers: key(),
      body: JSON.stringify({ slugs: ["gh:a/b"], pad: "x".repeat(200_000) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "body_too_large" });
  });

  it("env with a reserved name: 400 invalid_request naming it", async () => {
    const res = await deploy({
      services: [{ slug: "gh:a/b", env: { IAC_LISTEN: "0.0.0.0:50051" } }],
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/IAC_LISTEN' is reserved/);
  });

  it("more concurrent operations than the cap: 429 too_many_operations", async () => {
    expect((await deploy({ slugs: ["gh:a/b"], project: "p1" })).status).toBe(202);
    expect((await deploy({ slugs: ["gh:a/b"], project: "p2" })).status).toBe(202);
    const third = await deploy({ slugs: ["gh:a/b"], project: "p3" });
    expect(third.status).toBe(429);
    expect(await third.json()).toMatchObject({ error: "too_many_operations" });
  });

  it("more event streams per caller than the cap: 429 too_many_streams, others still served", async () => {
    const id = server.deployments.list()[0]!.id;
    const open: AbortController[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = new AbortController();
        open.push(c);
        const r = await fetch(`${base}/deployments/${id}/logs`, {
          headers: key(),
          signal: c.signal,
        });
        expect(r.status).toBe(200);
      }
      const third = await fetch(`${base}/deployments/${id}/logs`, { headers: key() });
      expect(third.status).toBe(429);
      expect(await third.json()).toMatchObject({ error: "too_many_streams" });
      expect((await fetch(`${base}/deployments`, { headers: key() })).status).toBe(200);
    } finally {
      for (const c of open) c.abort();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// sockets, terminal text, peer identity

describe("hostile surroundings", () => {
  it("a socket folder other users can write is refused", async () => {
    const dir = path.join(tmp, "wide");
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o777);
    await expect(prepareSocketPath(path.join(dir, "iac.sock"))).rejects.toThrow(
      /writable by other users/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ["cursor movement and clear screen", "ok\u001b[2J\u001b[Hfake prompt", "okfake prompt"],
    ["window title (OSC)", "a\u001b]0;pwned\u0007b", "ab"],
    ["C1 CSI", "a\u009b31mb", "ab"],
    ["bidi override", "file\u202etxt.exe", "filetxt.exe"],
    ["backspaces and carriage return", "safe\rEVIL\b\b", "safeEVIL"],
  ])("terminal text: %s is stripped", (_name, raw, clean) => {
    expect(stripControls(raw)).toBe(clean);
  });

  it("a server certificate of the same service name in another project is refused", () => {
    const peer = {
      subject: { CN: "api" },
      subjectaltname: "DNS:api, DNS:api.iacnet, URI:spiffe://other-project/api",
    } as never;
    expect(peerIdentityProblem(peer, "api", "spiffe://demo/api")).toMatch(
      /expected spiffe:\/\/demo\/api/,
    );
    expect(
      peerIdentityProblem(
        { subject: { CN: "api" }, subjectaltname: "DNS:api, URI:spiffe://demo/api" } as never,
        "api",
        "spiffe://demo/api",
      ),
    ).toBeUndefined();
  });
});
