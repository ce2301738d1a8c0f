// A real local HTTP server speaking the part of Supabase Auth (GoTrue behind the API
// gateway) the admin API uses, with real keys and real signed tokens:
//
//   GET /auth/v1/user
//     gateway: no `apikey` -> 401 {"message":"No API key found in request"},
//              unknown apikey -> 401 {"message":"Invalid API key"}
//     GoTrue:  no bearer -> 401 no_authorization; signature/expiry/parse -> 403 bad_jwt;
//              no sub -> 403 bad_jwt; sub not a UUID -> 400 bad_jwt; unknown user -> 403
//              user_not_found; unknown session_id -> 403 session_not_found; banned -> 403
//              user_banned; aud mismatch -> 400 validation_failed; else 200 with the user.
//     Errors are `{code, error_code, msg}`; with `X-Supabase-Api-Version: 2024-01-01`
//     `{code, message}` (and the header echoed), as supabase/auth internal/api/errors.go does.
//   GET /auth/v1/.well-known/jwks.json -> asymmetric public keys only, Cache-Control max-age=600.
//
// Access tokens are ES256 (kid'd, in the JWKS) or, like legacy projects, HS256 with the JWT
// secret (never published). Requests are counted per endpoint.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  SignJWT,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  decodeProtectedHeader,
  type CryptoKey,
  type JWK,
} from "jose";

export interface FakeUser {
  id: string;
  email: string;
  app_metadata: Record<string, unknown>;
  user_metadata: Record<string, unknown>;
  banned?: boolean;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export interface TokenOptions {
  sub?: string | null;
  aud?: string;
  iss?: string;
  /** Seconds from now (negative = already expired). */
  expiresIn?: number;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
  sessionId?: string | null;
  email?: string;
  /** "ES256" (default, JWKS-verifiable) or "HS256" (legacy secret; only /user can verify). */
  alg?: "ES256" | "HS256";
  /** Sign with this key instead (bad-signature tests) while claiming `kid`. */
  signWith?: CryptoKey;
  kid?: string;
  extra?: Record<string, unknown>;
}

export interface FakeSupabase {
  url: string;
  jwtSecret: string;
  /** Legacy service role key: an HS256 JWT with role service_role and no sub. */
  legacyServiceRoleKey: string;
  /** New-style secret key (not a JWT). */
  secretKey: string;
  anonKey: string;
  counts: { user: number; jwks: number };
  /** Authorization / apikey headers seen (to prove which credentials were sent). */
  seen: Array<{ path: string; apikey?: string; authorization?: string }>;
  users: Map<string, FakeUser>;
  sessions: Set<string>;
  addUser(u: Partial<FakeUser> & { app_metadata?: Record<string, unknown> }): FakeUser;
  token(opts?: TokenOptions): Promise<string>;
  /** Adds a new signing key (rotation); new tokens use it. Returns its kid. */
  rotateKey(opts?: { publish?: boolean }): Promise<string>;
  /** Answers every request with this status (e.g. 503) until cleared with undefined. */
  failWith(status: number | undefined): void;
  resetCounts(): void;
  close(): Promise<void>;
}

function uuidLike(s: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = randomUUID();
  const publicJwk = {
    ...(await exportJWK(publicKey)),
    kid,
    alg: "ES256",
    use: "sig",
    key_ops: ["verify"],
  };
  return { kid, privateKey, publicKey, publicJwk };
}

export async function startFakeSupabase(): Promise<FakeSupabase> {
  const jwtSecret = `test-jwt-secret-${randomUUID()}`;
  const secretBytes = new TextEncoder().encode(jwtSecret);
  const keys: SigningKey[] = [await newKey()];
  const published = new Set<string>([keys[0]!.kid]);
  let current = keys[0]!;
  const users = new Map<string, FakeUser>();
  const sessions = new Set<string>();
  const counts = { user: 0, jwks: 0 };
  const seen: FakeSupabase["seen"] = [];
  let failStatus: number | undefined;
  let url = "";

  const legacyServiceRoleKey = await new SignJWT({
    role: "service_role",
    iss: "supabase",
    ref: "localtest",
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("10y")
    .sign(secretBytes);
  const secretKey = `sb_secret_${randomUUID().replace(/-/g, "")}`;
  const anonKey = `sb_publishable_${randomUUID().replace(/-/g, "")}`;
  const apiKeys = new Set([legacyServiceRoleKey, secretKey, anonKey]);

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  function authError(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    code: string,
    msg: string,
  ): void {
    if (req.headers["x-supabase-api-version"] === "2024-01-01") {
      send(res, status, { code, message: msg }, { "x-supabase-api-version": "2024-01-01" });
    } else {
      send(res, status, { code: status, error_code: code, msg });
    }
  }

  async function verify(token: string): Promise<Record<string, unknown>> {
    const header = decodeProtectedHeader(token);
    if (header.kid !== undefined) {
      const key = keys.find((k) => k.kid === header.kid);
      if (key) return (await jwtVerify(token, key.publicKey, { algorithms: ["ES256"] })).payload;
      if (header.alg !== "HS256")
        throw new Error(`unrecognized JWT kid ${header.kid} for algorithm ${header.alg}`);
    }
    if (header.alg === "HS256")
      return (await jwtVerify(token, secretBytes, { algorithms: ["HS256"] })).payload;
    throw new Error(`unrecognized JWT kid ${header.kid} for algorithm ${header.alg}`);
  }

  async function user(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counts.user++;
    const apikey = req.headers.apikey as string | undefined;
    if (!apikey) return send(res, 401, { message: "No API key found in request" });
    if (!apiKeys.has(apikey)) return send(res, 401, { message: "Invalid API key" });
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!m)
      return authError(
        req,
        res,
        401,
        "no_authorization",
        "This endpoint requires a valid Bearer token",
      );
    let claims: Record<string, unknown>;
    try {
      claims = await verify(m[1]!);
    } catch (err) {
      return authError(
        req,
        res,
        403,
        "bad_jwt",
        `invalid JWT: unable to parse or verify signature, ${(err as Error).message}`,
      );
    }
    const sub = claims.sub;
    if (typeof sub !== "string" || sub === "")
      return authError(req, res, 403, "bad_jwt", "invalid claim: missing sub claim");
    if (!uuidLike(sub))
      return authError(req, res, 400, "bad_jwt", "invalid claim: sub claim must be a UUID");
    const u = users.get(sub);
    if (!u)
      return authError(
        req,
        res,
        403,
        "user_not_found",
        "User from sub claim in JWT does not exist",
      );
    const sid = claims.session_id;
    if (
      typeof sid === "string" &&
      sid !== "00000000-0000-0000-0000-000000000000" &&
      !sessions.has(sid)
    ) {
      return authError(
        req,
        res,
        403,
        "session_not_found",
        "Session from session_id claim in JWT does not exist",
      );
    }
    if (u.banned) return authError(req, res, 403, "user_banned", "User is banned");
    const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
    const want = (req.headers["x-jwt-aud"] as string | undefined) ?? "authenticated";
    if (aud !== want)
      return authError(
        req,
        res,
        400,
        "validation_failed",
        "Token audience doesn't match request audience",
      );
    send(res, 200, {
      id: u.id,
      aud: "authenticated",
      role: "authenticated",
      email: u.email,
      app_metadata: u.app_metadata,
      user_metadata: u.user_metadata,
      identities: [],
      created_at: "2026-01-01T00:00:00Z",
      updated_at: "2026-01-01T00:00:00Z",
      is_anonymous: false,
    });
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    seen.push({
      path: path ?? "",
      apikey: req.headers.apikey as string | undefined,
      authorization: req.headers.authorization,
    });
    if (failStatus !== undefined) {
      if (path === "/auth/v1/user") counts.user++;
      if (path === "/auth/v1/.well-known/jwks.json") counts.jwks++;
      return send(res, failStatus, {
        message: "An invalid response was received from the upstream server",
      });
    }
    if (req.method === "GET" && path === "/auth/v1/user") {
      user(req, res).catch((err) =>
        send(res, 500, { code: 500, error_code: "unexpected_failure", msg: String(err) }),
      );
      return;
    }
    if (req.method === "GET" && path === "/auth/v1/.well-known/jwks.json") {
      counts.jwks++;
      const body = { keys: keys.filter((k) => published.has(k.kid)).map((k) => k.publicJwk) };
      res.writeHead(200, {
        "content-type": "application/json",
        "cache-control": "public, max-age=600",
      });
      return res.end(JSON.stringify(body));
    }
    send(res, 404, { code: 404, error_code: "not_found", msg: "Not Found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeSupabase = {
    url,
    jwtSecret,
    legacyServiceRoleKey,
    secretKey,
    anonKey,
    counts,
    seen,
    users,
    sessions,
    addUser(u) {
      const full: FakeUser = {
        id: u.id ?? randomUUID(),
        email: u.email ?? `user-${users.size}@example.test`,
        app_metadata: u.app_metadata ?? { provider: "email", providers: ["email"] },
        user_metadata: u.user_metadata ?? {},
        banned: u.banned,
      };
      users.set(full.id, full);
      return full;
    },
    async token(opts: TokenOptions = {}) {
      const sessionId = opts.sessionId === undefined ? randomUUID() : opts.sessionId;
      if (sessionId) sessions.add(sessionId);
      const payload: Record<string, unknown> = {
        aud: opts.aud ?? "authenticated",
        role: "authenticated",
        email: opts.email,
        app_metadata: opts.appMetadata ?? { provider: "email", providers: ["email"] },
        user_metadata: opts.userMetadata ?? {},
        aal: "aal1",
        is_anonymous: false,
        ...(sessionId ? { session_id: sessionId } : {}),
        ...(opts.extra ?? {}),
      };
      const jwt = new SignJWT(payload)
        .setIssuer(opts.iss ?? `${url}/auth/v1`)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expiresIn ?? 3600));
      // Like Supabase, a token belongs to an existing user: without an explicit `sub` a user
      // is created whose app_metadata is what the token says (as at sign-in).
      const sub =
        opts.sub === undefined
          ? fake.addUser({ app_metadata: payload.app_metadata as Record<string, unknown> }).id
          : opts.sub;
      if (sub !== null) jwt.setSubject(sub);
      if (opts.alg === "HS256")
        return jwt.setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(secretBytes);
      return jwt
        .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: opts.kid ?? current.kid })
        .sign(opts.signWith ?? current.privateKey);
    },
    async rotateKey(opts = {}) {
      const k = await newKey();
      keys.push(k);
      if (opts.publish !== false) published.add(k.kid);
      current = k;
      return k.kid;
    },
    failWith(status) {
      failStatus = status;
    },
    resetCounts() {
      counts.user = 0;
      counts.jwks = 0;
      seen.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}

/** A fresh ES256 private key that is in no JWKS (for bad-signature tokens). */
export async function strayKey(): Promise<CryptoKey> {
  return (await generateKeyPair("ES256")).privateKey;
}
