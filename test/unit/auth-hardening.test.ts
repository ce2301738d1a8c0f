// Issue 11, M2 / M3 / Low "Errors": revocation reaches tokens whose signature verifies locally,
// remote checks are bounded, and no response carries internal detail. Real local Supabase
// Auth stand-in, real keys, real signed tokens.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Authenticator, type AuthenticatorOptions } from "../../src/api/auth.js";
import type { Pipeline } from "../../src/api/pipeline.js";
import { createServer } from "../../src/api/server.js";
import { loadConfig } from "../../src/kernel/config.js";
import { startFakeSupabase, strayKey, type FakeSupabase } from "../helpers/supabase-server.js";

let sb: FakeSupabase;
beforeAll(async () => {
  sb = await startFakeSupabase();
});
afterAll(async () => sb.close());
beforeEach(() => sb.resetCounts());

const admin = { provider: "email", roles: ["iac-admin"] };
const bearer = (t: string) => `Bearer ${t}`;
function auth(opts: Partial<AuthenticatorOptions> = {}): Authenticator {
  return new Authenticator({
    supabaseUrl: sb.url,
    serviceRoleKey: sb.secretKey,
    adminRoles: ["iac-admin"],
    fetchTimeoutMs: 2_000,
    ...opts,
  });
}

describe("M2: revocation reaches JWKS-verified tokens", () => {
  it.each([
    ["demoted", (u: { app_metadata: Record<string, unknown> }) => (u.app_metadata = {}), 403],
    ["banned", (u: { banned?: boolean }) => (u.banned = true), 401],
    ["deleted", (u: { id: string }) => sb.users.delete(u.id), 401],
  ])(
    "an admin %s after sign-in loses access once the cached verdict (<= 60 s) expires",
    async (_what, change, status) => {
      let now = Date.now();
      const a = auth({ now: () => now });
      const u = sb.addUser({ app_metadata: admin });
      const t = await sb.token({ sub: u.id, appMetadata: admin }); // ES256, in the JWKS
      expect((await a.authenticate(bearer(t))).ok).toBe(true);
      change(u as never);
      now += 61_000;
      expect(await a.authenticate(bearer(t))).toMatchObject({ ok: false, status });
    },
  );

  it("a logged-out session loses access (the session is checked, not just the signature)", async () => {
    let now = Date.now();
    const a = auth({ now: () => now });
    const u = sb.addUser({ app_metadata: admin });
    const sessionId = crypto.randomUUID();
    const t = await sb.token({ sub: u.id, appMetadata: admin, sessionId });
    expect((await a.authenticate(bearer(t))).ok).toBe(true);
    sb.sessions.delete(sessionId);
    now += 61_000;
    expect(await a.authenticate(bearer(t))).toMatchObject({ ok: false, status: 401 });
  });

  it("roles come from the user record Supabase returns, not from the (signed) token", async () => {
    const u = sb.addUser({ app_metadata: { provider: "email" } });
    const t = await sb.token({ sub: u.id, appMetadata: admin });
    expect(await auth().authenticate(bearer(t))).toMatchObject({ ok: false, status: 403 });
    expect(sb.counts.user).toBe(1);
  });

  it("the service role key path does not call Supabase", async () => {
    expect((await auth().authenticate(bearer(sb.secretKey))).ok).toBe(true);
    expect(sb.counts).toEqual({ user: 0, jwks: 0 });
  });
});

describe("M3: unauthenticated callers cannot drive calls to Supabase", () => {
  it("unverifiable tokens: remote checks are rate-limited per client (429), others unaffected", async () => {
    const a = auth({
      remoteRatePerClient: { capacity: 3, refillPerS: 0 },
      remoteRateGlobal: { capacity: 100, refillPerS: 0 },
    });
    const outs = [];
    for (let i = 0; i < 10; i++)
      outs.push(await a.authenticate(bearer(await sb.token({ alg: "HS256" })), "10.0.0.1"));
    expect(sb.counts.user).toBe(3);
    expect(outs.slice(3).every((o) => !o.ok && o.status === 429)).toBe(true);
    const u = sb.addUser({ app_metadata: admin });
    const other = await a.authenticate(
      bearer(await sb.token({ alg: "HS256", sub: u.id })),
      "10.0.0.2",
    );
    expect(other.ok).toBe(true);
  });

  it("a global limit bounds many clients together", async () => {
    const a = auth({
      remoteRatePerClient: { capacity: 5, refillPerS: 0 },
      remoteRateGlobal: { capacity: 4, refillPerS: 0 },
    });
    for (let i = 0; i < 12; i++)
      await a.authenticate(bearer(await sb.token({ alg: "HS256" })), `10.0.1.${i}`);
    expect(sb.counts.user).toBe(4);
  });

  it("negative verdicts never evict good ones", async () => {
    const a = auth({ cacheMaxEntries: 4, negativeCacheMaxEntries: 4 });
    const good = await sb.token({ appMetadata: admin });
    expect((await a.authenticate(bearer(good))).ok).toBe(true);
    const calls = sb.counts.user;
    const stray = await strayKey();
    for (let i = 0; i < 20; i++) {
      const bad = await sb.token({ appMetadata: admin, signWith: stray }); // cacheable 401s
      expect((await a.authenticate(bearer(bad))).ok).toBe(false);
    }
    const hits = a.stats.cacheHits;
    expect((await a.authenticate(bearer(good))).ok).toBe(true);
    expect(a.stats.cacheHits).toBe(hits + 1); // still a cache hit
    expect(sb.counts.user).toBe(calls);
  });

  it("JWKS is fetched at most once per interval, even while it keeps failing", async () => {
    const own = await startFakeSupabase();
    try {
      let now = Date.now();
      const a = new Authenticator({
        supabaseUrl: own.url,
        serviceRoleKey: own.secretKey,
        adminRoles: ["iac-admin"],
        jwksRefetchCooldownMs: 30_000,
        now: () => now,
      });
      own.failWith(503);
      for (let i = 0; i < 10; i++) {
        await a.authenticate(bearer(await own.token({ appMetadata: admin })), `c${i}`);
        now += 2_000; // 20 s in all: within one interval
      }
      expect(own.counts.jwks).toBe(1);
    } finally {
      await own.close();
    }
  });
});

describe("Errors: fixed texts, no internal detail", () => {
  const details = "Docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock; terraform v1.5.7";
  const pipeline: Pipeline = {
    deploy: async () => ({ project: "p", services: [] }),
    rollback: async () => ({ project: "p", services: [], rolled_back_to: 1 }),
    history: async () => [],
    overview: async () => [],
    destroy: async () => ({ removed: [] }),
    health: async () => [],
    streamLogs: async () => {},
    controlPlaneHealth: async () => ({
      ok: false,
      checks: {
        docker: { ok: true, detail: details },
        terraform: { ok: false, detail: "spawn terraform ENOENT /usr/local/bin" },
      },
    }),
  };
  let base = "";
  let close: () => Promise<void>;
  beforeAll(async () => {
    const config = loadConfig(
      { SUPABASE_URL: sb.url, SUPABASE_SERVICE_ROLE_KEY: sb.secretKey, IAC_LOG_LEVEL: "silent" },
      {},
      "/tmp",
    );
    const server = await createServer({ config, pipeline });
    base = (await server.listen({ http: { host: "127.0.0.1", port: 0 }, socketPath: false }))
      .httpUrl!;
    close = () => server.close();
  });
  afterAll(async () => close());

  it("a crafted `crit` header gives 401 with the fixed WWW-Authenticate text, not 500", async () => {
    const kidToken = await sb.token({ appMetadata: admin });
    const kid = JSON.parse(Buffer.from(kidToken.split(".")[0]!, "base64url").toString()).kid;
    const header = { alg: "ES256", kid, crit: ["x\r\nSet-Cookie: a=b\u00ff\u2028"] };
    const body = Buffer.from(
      JSON.stringify({
        iss: `${sb.url}/auth/v1`,
        aud: "authenticated",
        sub: crypto.randomUUID(),
        exp: Math.floor(Date.now() / 1000) + 600,
      }),
    ).toString("base64url");
    const forged = `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${body}.${kidToken.split(".")[2]}`;
    const res = await fetch(`${base}/services`, { headers: { authorization: bearer(forged) } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe(
      'Bearer realm="iac", error="invalid_token", error_description="the bearer token is invalid, expired or revoked"',
    );
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("401/403 bodies carry no issuer URL, user id or role names", async () => {
    const wrongIss = await sb.token({ appMetadata: admin, iss: `${sb.url}/auth/v1x` });
    const r401 = await fetch(`${base}/services`, { headers: { authorization: bearer(wrongIss) } });
    expect(r401.status).toBe(401);
    const t401 = await r401.text();
    expect(t401).not.toContain(sb.url);
    expect(t401).not.toContain("127.0.0.1");

    const u = sb.addUser({ app_metadata: { roles: ["viewer"] } });
    const viewer = await sb.token({ sub: u.id, appMetadata: { roles: ["viewer"] } });
    const r403 = await fetch(`${base}/services`, { headers: { authorization: bearer(viewer) } });
    expect(r403.status).toBe(403);
    const t403 = await r403.text();
    for (const secret of [u.id, "viewer", "iac-admin"]) expect(t403).not.toContain(secret);
    expect(JSON.parse(t403)).toMatchObject({ error: "insufficient_scope" });
  });

  it("public /health says up/down per check, without versions or error texts", async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).not.toContain("20.10.24");
    expect(text).not.toContain("ENOENT");
    expect(JSON.parse(text)).toMatchObject({
      ok: false,
      checks: { docker: { ok: true }, terraform: { ok: false } },
    });
  });

  it("/health details only for an authenticated admin", async () => {
    const res = await fetch(`${base}/health`, { headers: { authorization: bearer(sb.secretKey) } });
    expect(await res.json()).toMatchObject({ checks: { docker: { detail: details } } });
    const bad = await fetch(`${base}/health`, { headers: { authorization: bearer("garbage") } });
    expect(await bad.text()).not.toContain("20.10.24");
  });
});
