// Supabase Auth for the admin API, against a real local server speaking Supabase's
// /auth/v1/user and JWKS contract, with real ES256/HS256 keys and real signed tokens.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/kernel/config.js";
import {
  appMetadataRoles,
  Authenticator,
  bearerToken,
  safeEqual,
  type AuthenticatorOptions,
} from "../../src/api/auth.js";
import type { Pipeline } from "../../src/api/pipeline.js";
import { createServer } from "../../src/api/server.js";
import { startFakeSupabase, strayKey, type FakeSupabase } from "../helpers/supabase-server.js";

let sb: FakeSupabase;

beforeAll(async () => {
  sb = await startFakeSupabase();
});
afterAll(async () => {
  await sb.close();
});
beforeEach(() => sb.resetCounts());

function auth(opts: Partial<AuthenticatorOptions> = {}): Authenticator {
  return new Authenticator({
    supabaseUrl: sb.url,
    serviceRoleKey: sb.legacyServiceRoleKey,
    adminRoles: ["iac-admin"],
    fetchTimeoutMs: 2_000,
    ...opts,
  });
}

const bearer = (t: string) => `Bearer ${t}`;
const admin = { provider: "email", roles: ["iac-admin"] };

describe("Supabase fake speaks the documented contract", () => {
  it("401 no_authorization without a bearer; both error formats; gateway apikey errors", async () => {
    const legacy = await fetch(`${sb.url}/auth/v1/user`, { headers: { apikey: sb.secretKey } });
    expect(legacy.status).toBe(401);
    expect(await legacy.json()).toEqual({
      code: 401,
      error_code: "no_authorization",
      msg: "This endpoint requires a valid Bearer token",
    });
    const v2 = await fetch(`${sb.url}/auth/v1/user`, {
      headers: { apikey: sb.secretKey, "x-supabase-api-version": "2024-01-01" },
    });
    expect(v2.headers.get("x-supabase-api-version")).toBe("2024-01-01");
    expect(await v2.json()).toEqual({
      code: "no_authorization",
      message: "This endpoint requires a valid Bearer token",
    });
    const noKey = await fetch(`${sb.url}/auth/v1/user`);
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toEqual({ message: "No API key found in request" });
  });

  it("403 bad_jwt for the service role JWT itself (no sub) and for a bad signature", async () => {
    const r = await fetch(`${sb.url}/auth/v1/user`, {
      headers: { apikey: sb.legacyServiceRoleKey, authorization: bearer(sb.legacyServiceRoleKey) },
    });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error_code: string }).error_code).toBe("bad_jwt");
  });

  it("JWKS lists only asymmetric public keys, cacheable for 10 minutes", async () => {
    const r = await fetch(`${sb.url}/auth/v1/.well-known/jwks.json`);
    expect(r.headers.get("cache-control")).toContain("max-age=600");
    const { keys } = (await r.json()) as { keys: Array<Record<string, unknown>> };
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k.kty).toBe("EC");
      expect(k).not.toHaveProperty("d");
      expect(k).not.toHaveProperty("k");
    }
  });
});

describe("helpers", () => {
  it("bearerToken parses only well-formed Bearer headers", () => {
    expect(bearerToken("Bearer abc.def")).toBe("abc.def");
    expect(bearerToken("bearer   abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
  it("safeEqual compares any lengths", () => {
    expect(safeEqual("sb_secret_x", "sb_secret_x")).toBe(true);
    expect(safeEqual("sb_secret_x", "sb_secret_y")).toBe(false);
    expect(safeEqual("short", "a much longer string")).toBe(false);
  });
  it("appMetadataRoles reads role and roles, ignores junk", () => {
    expect(appMetadataRoles({ role: "a", roles: ["b", 3, "c"] })).toEqual(["a", "b", "c"]);
    expect(appMetadataRoles(null)).toEqual([]);
  });
});

describe("Authenticator", () => {
  it("valid admin token: signature verified locally via JWKS, then confirmed by /auth/v1/user", async () => {
    const a = auth();
    const out = await a.authenticate(
      bearer(await sb.token({ appMetadata: admin, email: "ops@example.test" })),
    );
    expect(out).toMatchObject({
      ok: true,
      principal: { kind: "user", roles: ["iac-admin"], verifiedBy: "jwks+supabase" },
    });
    expect(sb.counts).toEqual({ user: 1, jwks: 1 });
  });

  it("app_metadata.role (single string) also grants admin", async () => {
    const out = await auth().authenticate(
      bearer(await sb.token({ appMetadata: { role: "iac-admin" } })),
    );
    expect(out.ok).toBe(true);
  });

  it("valid non-admin: 403", async () => {
    const out = await auth().authenticate(
      bearer(await sb.token({ appMetadata: { roles: ["viewer"] } })),
    );
    expect(out).toMatchObject({ ok: false, status: 403, error: "insufficient_scope" });
  });

  it("user_metadata roles are ignored (users can edit them)", async () => {
    const t = await sb.token({ userMetadata: { role: "iac-admin", roles: ["iac-admin"] } });
    expect(await auth().authenticate(bearer(t))).toMatchObject({ ok: false, status: 403 });
  });

  it.each([
    ["expired", { expiresIn: -120 }, /expired/],
    ["wrong audience", { aud: "anon" }, /aud/],
    ["wrong issuer", { iss: "https://evil.example/auth/v1" }, /iss/],
    ["missing sub", { sub: null }, /sub/],
  ])("%s: 401 decided locally", async (_name, opts, why) => {
    const out = await auth().authenticate(bearer(await sb.token({ appMetadata: admin, ...opts })));
    expect(out).toMatchObject({ ok: false, status: 401, error: "invalid_token" });
    if (!out.ok) expect(out.reason).toMatch(why);
    expect(sb.counts.user).toBe(0);
  });

  it("bad signature (right kid, wrong key): 401 without asking Supabase", async () => {
    const t = await sb.token({ appMetadata: admin, signWith: await strayKey() });
    const out = await auth().authenticate(bearer(t));
    expect(out).toMatchObject({ ok: false, status: 401 });
    if (!out.ok) expect(out.reason).toMatch(/signature/);
    expect(sb.counts.user).toBe(0);
  });

  it("not a JWT, missing or malformed header: 401", async () => {
    const a = auth();
    expect(await a.authenticate(bearer("not-a-jwt"))).toMatchObject({ status: 401 });
    expect(await a.authenticate(undefined)).toMatchObject({ status: 401 });
    expect(await a.authenticate("Basic Zm9vOmJhcg==")).toMatchObject({ status: 401 });
  });

  it("service role key, legacy JWT form: principal service_role, Supabase never called", async () => {
    const out = await auth().authenticate(bearer(sb.legacyServiceRoleKey));
    expect(out).toEqual({ ok: true, principal: { kind: "service_role" } });
    expect(sb.counts).toEqual({ user: 0, jwks: 0 });
  });

  it("service role key, sb_secret_ form; the other form is not accepted for it", async () => {
    const a = auth({ serviceRoleKey: sb.secretKey });
    expect(await a.authenticate(bearer(sb.secretKey))).toEqual({
      ok: true,
      principal: { kind: "service_role" },
    });
    // A service_role JWT that is not the configured key is just a token without sub/iss: 401.
    expect(await a.authenticate(bearer(sb.legacyServiceRoleKey))).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(await a.authenticate(bearer(sb.secretKey + "x"))).toMatchObject({
      ok: false,
      status: 401,
    });
  });

  it("HS256 (legacy secret) token: local verification cannot decide, /auth/v1/user does", async () => {
    const u = sb.addUser({ app_metadata: { provider: "email", roles: ["iac-admin"] } });
    const t = await sb.token({ alg: "HS256", sub: u.id });
    const out = await auth().authenticate(bearer(t));
    expect(out).toMatchObject({
      ok: true,
      principal: { kind: "user", id: u.id, verifiedBy: "supabase" },
    });
    expect(sb.counts.user).toBe(1);
    const call = sb.seen.find((s) => s.path === "/auth/v1/user");
    expect(call?.apikey).toBe(sb.legacyServiceRoleKey);
    expect(call?.authorization).toBe(bearer(t));
  });

  it("authorization on the /user path uses the user record's app_metadata, not the token's", async () => {
    const u = sb.addUser({ app_metadata: { provider: "email" } });
    const t = await sb.token({ alg: "HS256", sub: u.id, appMetadata: admin });
    expect(await auth().authenticate(bearer(t))).toMatchObject({ ok: false, status: 403 });
  });

  it.each([
    ["session_not_found", "revoked session"],
    ["user_banned", "banned user"],
    ["user_not_found", "deleted user"],
  ])("Supabase answers 403 %s (%s): 401 invalid_token", async (code) => {
    const u = sb.addUser({ app_metadata: admin });
    const sessionId = crypto.randomUUID();
    const t = await sb.token({ alg: "HS256", sub: u.id, sessionId });
    if (code === "session_not_found") sb.sessions.delete(sessionId);
    if (code === "user_banned") u.banned = true;
    if (code === "user_not_found") sb.users.delete(u.id);
    const out = await auth().authenticate(bearer(t));
    expect(out).toMatchObject({ ok: false, status: 401, error: "invalid_token" });
    if (!out.ok) expect(out.reason).toContain(code);
  });

  it("cache hit makes no second call", async () => {
    const a = auth();
    const u = sb.addUser({ app_metadata: admin });
    const t = await sb.token({ alg: "HS256", sub: u.id });
    expect((await a.authenticate(bearer(t))).ok).toBe(true);
    expect((await a.authenticate(bearer(t))).ok).toBe(true);
    expect(sb.counts.user).toBe(1);
    expect(a.stats.cacheHits).toBe(1);
    const es = await sb.token({ appMetadata: admin });
    await a.authenticate(bearer(es));
    await a.authenticate(bearer(es));
    expect(sb.counts.jwks).toBe(1);
    expect(a.stats.cacheHits).toBe(2);
  });

  it("concurrent requests with one token share one Supabase call", async () => {
    const a = auth();
    const u = sb.addUser({ app_metadata: admin });
    const t = await sb.token({ alg: "HS256", sub: u.id });
    const outs = await Promise.all(Array.from({ length: 5 }, () => a.authenticate(bearer(t))));
    expect(outs.every((o) => o.ok)).toBe(true);
    expect(sb.counts.user).toBe(1);
  });

  it("verdicts are cached at most 60 s", async () => {
    let now = Date.now();
    const a = auth({ now: () => now });
    const u = sb.addUser({ app_metadata: admin });
    const t = await sb.token({ alg: "HS256", sub: u.id });
    await a.authenticate(bearer(t));
    now += 59_000;
    await a.authenticate(bearer(t));
    expect(sb.counts.user).toBe(1);
    now += 2_000;
    await a.authenticate(bearer(t));
    expect(sb.counts.user).toBe(2);
  });

  it("a cached verdict never outlives the token", async () => {
    let now = Date.now();
    const a = auth({ now: () => now });
    const t = await sb.token({ appMetadata: admin, expiresIn: 20 });
    expect((await a.authenticate(bearer(t))).ok).toBe(true);
    now += 30_000;
    expect(await a.authenticate(bearer(t))).toMatchObject({ ok: false, status: 401 });
    expect(a.stats.cacheHits).toBe(0);
  });

  it("unknown kid: JWKS refetched once, then verified locally", async () => {
    const own = await startFakeSupabase(); // rotation must not leak into other tests
    try {
      const a = new Authenticator({
        supabaseUrl: own.url,
        serviceRoleKey: own.secretKey,
        adminRoles: ["iac-admin"],
        jwksRefetchCooldownMs: 0,
      });
      expect((await a.authenticate(bearer(await own.token({ appMetadata: admin })))).ok).toBe(true);
      expect(own.counts.jwks).toBe(1);
      await own.rotateKey();
      const out = await a.authenticate(bearer(await own.token({ appMetadata: admin })));
      expect(out).toMatchObject({ ok: true, principal: { verifiedBy: "jwks+supabase" } });
      expect(own.counts).toEqual({ user: 2, jwks: 2 });
      await a.authenticate(bearer(await own.token({ appMetadata: admin })));
      expect(own.counts.jwks).toBe(2);
    } finally {
      await own.close();
    }
  });

  it("unknown kid within the refetch cooldown: Supabase decides, no JWKS storm", async () => {
    const own = await startFakeSupabase();
    try {
      const a = new Authenticator({
        supabaseUrl: own.url,
        serviceRoleKey: own.secretKey,
        adminRoles: ["iac-admin"],
      });
      await a.authenticate(bearer(await own.token({ appMetadata: admin })));
      await own.rotateKey({ publish: false });
      const u = own.addUser({ app_metadata: admin });
      const tokens = [
        await own.token({ sub: u.id }),
        await own.token({ sub: u.id }),
        await own.token({ sub: u.id }),
      ];
      for (const t of tokens) expect((await a.authenticate(bearer(t))).ok).toBe(true);
      expect(own.counts.jwks).toBe(1);
      expect(own.counts.user).toBe(4); // the first token is confirmed remotely too
    } finally {
      await own.close();
    }
  });

  it("Supabase down (connection refused): 503, never a pass, not cached", async () => {
    const other = await startFakeSupabase();
    const u = other.addUser({ app_metadata: admin });
    const t = await other.token({ appMetadata: admin, sub: u.id });
    const url = other.url;
    await other.close();
    const a = new Authenticator({
      supabaseUrl: url,
      serviceRoleKey: other.secretKey,
      adminRoles: ["iac-admin"],
      fetchTimeoutMs: 1_000,
    });
    const out = await a.authenticate(bearer(t));
    expect(out).toMatchObject({ ok: false, status: 503, error: "auth_unavailable" });
    expect((await a.authenticate(bearer(t))).ok).toBe(false);
    expect(a.stats.cacheHits).toBe(0);
  });

  it("Supabase answering 5xx: 503; recovers once it is back", async () => {
    const a = auth();
    const u = sb.addUser({ app_metadata: admin });
    const t = await sb.token({ alg: "HS256", sub: u.id });
    sb.failWith(503);
    try {
      expect(await a.authenticate(bearer(t))).toMatchObject({ ok: false, status: 503 });
    } finally {
      sb.failWith(undefined);
    }
    expect((await a.authenticate(bearer(t))).ok).toBe(true);
  });

  it("our service key refused by the gateway: 503 (misconfiguration), not a pass", async () => {
    const a = auth({ serviceRoleKey: "sb_secret_wrong" });
    const u = sb.addUser({ app_metadata: admin });
    const out = await a.authenticate(bearer(await sb.token({ alg: "HS256", sub: u.id })));
    expect(out).toMatchObject({ ok: false, status: 503 });
    if (!out.ok) expect(out.reason).toMatch(/SUPABASE_SERVICE_ROLE_KEY/);
  });

  it("not configured: 503 for everything", async () => {
    const a = new Authenticator({ adminRoles: ["iac-admin"] });
    expect(a.configured).toBe(false);
    expect(await a.authenticate(bearer(sb.secretKey))).toMatchObject({
      ok: false,
      status: 503,
      error: "auth_not_configured",
    });
  });
});

describe("HTTP: auth on the admin API", () => {
  const pipeline: Pipeline = {
    deploy: async () => ({ project: "p", services: [] }),
    rollback: async () => ({ project: "p", services: [], rolled_back_to: 1 }),
    history: async () => [],
    overview: async () => [],
    destroy: async () => ({ removed: [] }),
    health: async () => [{ name: "api", status: "SERVING" }],
    streamLogs: async () => {},
    controlPlaneHealth: async () => ({
      ok: true,
      checks: { docker: { ok: true, detail: "test" } },
    }),
  };
  let lines = "";
  let base = "";
  let close: () => Promise<void>;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines += chunk.toString();
        cb();
      },
    });
    const config = loadConfig(
      {
        SUPABASE_URL: sb.url,
        SUPABASE_SERVICE_ROLE_KEY: sb.secretKey,
        IAC_LOG_LEVEL: "trace",
        IAC_STATE_DIR: process.env.IAC_STATE_DIR,
      },
      {},
      "/tmp",
    );
    const server = await createServer({ config, pipeline, logger: pino({ level: "trace" }, sink) });
    const bound = await server.listen({ http: { host: "127.0.0.1", port: 0 }, socketPath: false });
    base = bound.httpUrl!;
    close = () => server.close();
  });
  afterAll(async () => close());

  it('401 carries WWW-Authenticate: Bearer error="invalid_token"; 403 for non-admins', async () => {
    const none = await fetch(`${base}/services`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer .*error="invalid_token"/);
    const user = await fetch(`${base}/services`, {
      headers: { authorization: bearer(await sb.token({ appMetadata: { roles: ["viewer"] } })) },
    });
    expect(user.status).toBe(403);
    const ok = await fetch(`${base}/services`, {
      headers: { authorization: bearer(sb.secretKey) },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      project: "iac",
      services: [{ name: "api", status: "SERVING" }],
    });
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
  });

  it("tokens and keys never appear in the logs", async () => {
    const u = sb.addUser({ app_metadata: admin });
    const tokens = [
      sb.secretKey,
      await sb.token({ appMetadata: admin }),
      await sb.token({ appMetadata: { roles: ["viewer"] } }),
      await sb.token({ alg: "HS256", sub: u.id }),
      await sb.token({ appMetadata: admin, expiresIn: -100 }),
      "garbage-token-value-1234567890",
    ];
    for (const t of tokens) {
      await fetch(`${base}/services`, { headers: { authorization: bearer(t) } });
      await fetch(`${base}/deploy`, {
        method: "POST",
        headers: { authorization: bearer(t), "content-type": "application/json" },
        body: "{bad json",
      });
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).toContain("request not authorized");
    for (const t of tokens) {
      expect(lines).not.toContain(t);
      expect(lines).not.toContain(t.split(".")[2] ?? t); // not even the signature part
    }
  });
});
