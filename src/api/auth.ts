// Who is calling, and may they? Supabase Auth for the admin API.
//
//  1. `Authorization: Bearer <token>` is required (the Unix socket is trusted by its file
//     mode unless IAC_SOCKET_REQUIRE_AUTH=1; server.ts decides that, not this file).
//  2. The service role key itself (legacy service_role JWT or `sb_secret_...`), compared in
//     constant time, is the principal `service_role`. It is never sent to /auth/v1/user
//     (which answers 403 bad_jwt for it: it has no `sub`).
//  3. A user access token is first checked locally (claims; signature against the project's
//     JWKS when it names a known key): a cheap filter that turns away forgeries without a
//     network call. What it may do is then always decided by Supabase now: GET /auth/v1/user
//     confirms the user and session still exist and are not banned, and the roles come from
//     the returned user's app_metadata — so demotion, ban, logout and deletion take effect
//     within the cache lifetime, not at the token's expiry.
//  4. Authorized: service_role, or a user whose app_metadata.role / app_metadata.roles
//     contains one of IAC_ADMIN_ROLES. user_metadata is never looked at (users can edit it).
//  5. Verdicts are cached by the token's SHA-256 until its expiry, at most 60 s; positive and
//     negative verdicts live in separate caches, so floods of bad tokens never evict good
//     ones. Remote checks are rate-limited per client and globally (429 beyond). Supabase
//     unreachable means 503, never a pass. Tokens are never logged.
//  6. What goes back to the caller is fixed text: no issuer URL, user id, role name or
//     library message (a crafted header must not end up in a response header).
import { createHash, timingSafeEqual } from "node:crypto";
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
} from "jose";
import { type BucketSpec, RateLimiter } from "./ratelimit.js";
import { SupabaseAuthClient, SupabaseUnavailableError } from "./supabase.js";

export type Principal =
  | { kind: "service_role" }
  | {
      kind: "user";
      id: string;
      email?: string;
      roles: string[];
      /** Always confirmed by Supabase; "jwks+supabase" when the signature was also checked locally. */
      verifiedBy: "jwks+supabase" | "supabase";
    }
  | { kind: "socket" };

export type DenyStatus = 401 | 403 | 429 | 503;

export type AuthOutcome =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      status: DenyStatus;
      error: string;
      /** Fixed text for the caller: no issuer, user id, role name or library message. */
      message: string;
      /** Why, for the server's own log (never sent to the caller; never contains the token). */
      reason: string;
    };

/** The public texts of every denial (the caller learns the class, the log learns the detail). */
export const DENIAL_TEXT = {
  missing: "missing bearer token: send `Authorization: Bearer <access token>`",
  invalid_token: "the bearer token is invalid, expired or revoked",
  insufficient_scope: "the token is valid, but its user is not an administrator of this server",
  rate_limited: "too many token checks from this client; retry later",
  auth_unavailable: "the authentication service is unavailable; retry later",
  auth_not_configured:
    "authentication is not configured on this server (set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY); " +
    "use the Unix socket for local access",
} as const;

export interface AuthenticatorOptions {
  supabaseUrl?: string;
  serviceRoleKey?: string;
  adminRoles: string[];
  /** Upper bound for a cached verdict (ms). */
  cacheTtlMs?: number;
  /** Positive verdicts kept at most. */
  cacheMaxEntries?: number;
  /** Negative verdicts kept at most (a separate cache: they never evict positive ones). */
  negativeCacheMaxEntries?: number;
  /** Remote (/auth/v1/user) checks per client and for all clients together. */
  remoteRatePerClient?: BucketSpec;
  remoteRateGlobal?: BucketSpec;
  fetchTimeoutMs?: number;
  jwksRefetchCooldownMs?: number;
  /** Accepted clock skew for exp/nbf/iat (s). */
  clockToleranceS?: number;
  now?: () => number;
}

const ASYMMETRIC = [
  "ES256",
  "ES384",
  "ES512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "EdDSA",
];
const AUDIENCE = "authenticated";

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Constant-time string equality (both sides hashed to equal length first). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** The token from an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header) : null;
  return m?.[1];
}

/** Admin-relevant roles: app_metadata.role and app_metadata.roles only. */
export function appMetadataRoles(appMetadata: unknown): string[] {
  if (!appMetadata || typeof appMetadata !== "object") return [];
  const md = appMetadata as Record<string, unknown>;
  const roles: string[] = [];
  if (typeof md.role === "string") roles.push(md.role);
  if (Array.isArray(md.roles)) for (const r of md.roles) if (typeof r === "string") roles.push(r);
  return roles;
}

interface CachedVerdict {
  outcome: AuthOutcome;
  until: number;
}

const deny = (
  status: DenyStatus,
  error: keyof typeof DENIAL_TEXT,
  reason: string,
): AuthOutcome => ({
  ok: false,
  status,
  error: error === "missing" ? "invalid_token" : error,
  message: DENIAL_TEXT[error],
  reason,
});

/** A bounded map, oldest first out. */
class VerdictCache {
  private readonly map = new Map<string, CachedVerdict>();
  constructor(private readonly max: number) {}
  get(key: string, now: number): AuthOutcome | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    if (hit.until > now) return hit.outcome;
    this.map.delete(key);
    return undefined;
  }
  set(key: string, v: CachedVerdict): void {
    this.map.delete(key);
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
    this.map.set(key, v);
  }
  get size(): number {
    return this.map.size;
  }
}

export class Authenticator {
  readonly configured: boolean;
  readonly supabase?: SupabaseAuthClient;
  private readonly serviceRoleKey?: string;
  private readonly adminRoles: string[];
  private readonly cacheTtlMs: number;
  private readonly clockTolerance: number;
  private readonly now: () => number;
  private readonly good: VerdictCache;
  private readonly bad: VerdictCache;
  private readonly limiter: RateLimiter;
  private readonly inflight = new Map<string, Promise<{ outcome: AuthOutcome; exp?: number }>>();
  readonly stats = {
    cacheHits: 0,
    localVerdicts: 0,
    remoteVerdicts: 0,
    unavailable: 0,
    rateLimited: 0,
  };

  constructor(opts: AuthenticatorOptions) {
    this.configured = Boolean(opts.supabaseUrl && opts.serviceRoleKey);
    this.serviceRoleKey = opts.serviceRoleKey;
    this.adminRoles = opts.adminRoles;
    this.cacheTtlMs = Math.min(opts.cacheTtlMs ?? 60_000, 60_000);
    this.clockTolerance = opts.clockToleranceS ?? 5;
    this.now = opts.now ?? Date.now;
    this.good = new VerdictCache(opts.cacheMaxEntries ?? 10_000);
    this.bad = new VerdictCache(opts.negativeCacheMaxEntries ?? 10_000);
    this.limiter = new RateLimiter(
      opts.remoteRatePerClient ?? { capacity: 20, refillPerS: 1 / 3 },
      opts.remoteRateGlobal ?? { capacity: 200, refillPerS: 10 },
      this.now,
    );
    if (opts.supabaseUrl && opts.serviceRoleKey) {
      this.supabase = new SupabaseAuthClient({
        url: opts.supabaseUrl,
        apiKey: opts.serviceRoleKey,
        timeoutMs: opts.fetchTimeoutMs,
        jwksRefetchCooldownMs: opts.jwksRefetchCooldownMs,
        now: this.now,
      });
    }
  }

  /**
   * Decides on an Authorization header value. `client` identifies the caller for rate limits
   * (the peer address). Never throws; never logs the token.
   */
  async authenticate(authorization: string | undefined, client = "unknown"): Promise<AuthOutcome> {
    if (!this.configured || !this.supabase || !this.serviceRoleKey)
      return deny(503, "auth_not_configured", "SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY not set");
    const token = bearerToken(authorization);
    if (!token) return deny(401, "missing", "no bearer token");
    if (safeEqual(token, this.serviceRoleKey))
      return { ok: true, principal: { kind: "service_role" } };

    const key = sha256(token).toString("base64url");
    const now = this.now();
    const hit = this.good.get(key, now) ?? this.bad.get(key, now);
    if (hit) {
      this.stats.cacheHits++;
      return hit;
    }
    // Concurrent requests with the same token share one decision (no thundering herd).
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.decide(token, client).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const { outcome, exp } = await pending;
    if (outcome.ok || outcome.status === 401 || outcome.status === 403)
      this.remember(key, outcome, exp);
    return outcome;
  }

  private remember(key: string, outcome: AuthOutcome, exp: number | undefined): void {
    const now = this.now();
    const until = Math.min(
      now + this.cacheTtlMs,
      exp !== undefined ? exp * 1000 : now + this.cacheTtlMs,
    );
    if (until <= now) return;
    (outcome.ok ? this.good : this.bad).set(key, { outcome, until });
  }

  private authorize(
    id: string,
    email: string | undefined,
    roles: string[],
    by: "jwks+supabase" | "supabase",
  ): AuthOutcome {
    if (roles.some((r) => this.adminRoles.includes(r))) {
      return { ok: true, principal: { kind: "user", id, email, roles, verifiedBy: by } };
    }
    return deny(
      403,
      "insufficient_scope",
      `user ${id} is not an admin: app_metadata roles [${roles.join(", ")}] include none of IAC_ADMIN_ROLES`,
    );
  }

  /** The claims every accepted token must carry, whoever verified the signature. */
  private claimProblem(claims: JWTPayload): string | undefined {
    const issuer = this.supabase!.issuer;
    if (claims.iss !== issuer) return `unexpected "iss" claim (expected ${issuer})`;
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(AUDIENCE)) return `unexpected "aud" claim (expected ${AUDIENCE})`;
    if (typeof claims.sub !== "string" || claims.sub === "") return `missing "sub" claim`;
    if (typeof claims.exp !== "number") return `missing "exp" claim`;
    if (claims.exp * 1000 + this.clockTolerance * 1000 <= this.now()) return `token expired`;
    return undefined;
  }

  private async decide(
    token: string,
    client: string,
  ): Promise<{ outcome: AuthOutcome; exp?: number }> {
    let claims: JWTPayload;
    let alg: string | undefined;
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      alg = header.alg;
      kid = header.kid;
      claims = decodeJwt(token);
    } catch {
      this.stats.localVerdicts++;
      return { outcome: deny(401, "invalid_token", "bearer token is not a JWT") };
    }
    const exp = typeof claims.exp === "number" ? claims.exp : undefined;
    const problem = this.claimProblem(claims);
    if (problem) {
      this.stats.localVerdicts++;
      return { outcome: deny(401, "invalid_token", `invalid token: ${problem}`), exp };
    }

    // The cheap first filter: a signature we can check locally must hold.
    let signatureChecked = false;
    if (alg && ASYMMETRIC.includes(alg)) {
      const keys = await this.supabase!.keySetFor(kid);
      if (keys) {
        try {
          await jwtVerify(token, keys, {
            issuer: this.supabase!.issuer,
            audience: AUDIENCE,
            algorithms: ASYMMETRIC,
            requiredClaims: ["sub", "exp"],
            clockTolerance: this.clockTolerance,
            currentDate: new Date(this.now()),
          });
          signatureChecked = true;
        } catch (err) {
          if (
            !(err instanceof joseErrors.JWKSNoMatchingKey) &&
            !(err instanceof joseErrors.JWKSMultipleMatchingKeys)
          ) {
            this.stats.localVerdicts++;
            const why =
              err instanceof joseErrors.JWSSignatureVerificationFailed
                ? "signature verification failed"
                : `${(err as Error).name}: ${(err as Error).message}`;
            return { outcome: deny(401, "invalid_token", `invalid token: ${why}`), exp };
          }
          // No usable key: Supabase decides alone.
        }
      }
    }

    // Supabase decides now: the user and session exist, are not banned; roles from the user.
    // Unverified tokens are what an attacker can mint freely: those pay the rate limit.
    if (!signatureChecked && !this.limiter.take(client)) {
      this.stats.rateLimited++;
      return { outcome: deny(429, "rate_limited", `remote token checks rate-limited (${client})`) };
    }
    try {
      const verdict = await this.supabase!.getUser(token);
      this.stats.remoteVerdicts++;
      if (!verdict.ok) {
        return {
          outcome: deny(
            401,
            "invalid_token",
            `Supabase rejected the token: ${verdict.code}${verdict.message ? ` (${verdict.message})` : ""}`,
          ),
          exp,
        };
      }
      if (verdict.user.id !== claims.sub) {
        return {
          outcome: deny(
            401,
            "invalid_token",
            "Supabase returned a different user than the token's sub",
          ),
          exp,
        };
      }
      return {
        outcome: this.authorize(
          verdict.user.id,
          verdict.user.email,
          appMetadataRoles(verdict.user.app_metadata),
          signatureChecked ? "jwks+supabase" : "supabase",
        ),
        exp,
      };
    } catch (err) {
      this.stats.unavailable++;
      const why =
        err instanceof SupabaseUnavailableError
          ? err.message
          : `Supabase Auth check failed: ${(err as Error).message}`;
      return { outcome: deny(503, "auth_unavailable", why) };
    }
  }
}

/** How a principal is recorded in a release: `user:<email or id>`, `service_role`, `socket`. */
export function principalName(p: Principal | undefined): string {
  if (!p) return "api:anonymous";
  if (p.kind === "user") return `user:${p.email ?? p.id}`;
  return p.kind;
}
