// Who is calling, and may they? Supabase Auth for the admin API.
//
//  1. `Authorization: Bearer <token>` is required (the Unix socket is trusted by its file
//     mode unless IAC_SOCKET_REQUIRE_AUTH=1; server.ts decides that, not this file).
//  2. The service role key itself (legacy service_role JWT or `sb_secret_...`), compared in
//     constant time, is the principal `service_role`. It is never sent to /auth/v1/user
//     (which answers 403 bad_jwt for it: it has no `sub`).
//  3. A user access token is verified locally against the project's JWKS (asymmetric keys)
//     with issuer, audience, `sub` and expiry checks; only when that cannot decide (HS256
//     project, unknown kid after one refetch, JWKS unavailable) GET /auth/v1/user decides.
//  4. Authorized: service_role, or a user whose app_metadata.role / app_metadata.roles
//     contains one of IAC_ADMIN_ROLES. user_metadata is never looked at (users can edit it).
//  5. Verdicts are cached by the token's SHA-256 until its expiry, at most 60 s. Supabase
//     unreachable means 503, never a pass. Tokens are never logged.
import { createHash, timingSafeEqual } from "node:crypto";
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
} from "jose";
import { SupabaseAuthClient, SupabaseUnavailableError } from "./supabase.js";

export type Principal =
  | { kind: "service_role" }
  | { kind: "user"; id: string; email?: string; roles: string[]; verifiedBy: "jwks" | "supabase" }
  | { kind: "socket" };

export type AuthOutcome =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 403 | 503; error: string; message: string };

export interface AuthenticatorOptions {
  supabaseUrl?: string;
  serviceRoleKey?: string;
  adminRoles: string[];
  /** Upper bound for a cached verdict (ms). */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
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

const deny = (status: 401 | 403 | 503, error: string, message: string): AuthOutcome => ({
  ok: false,
  status,
  error,
  message,
});

export class Authenticator {
  readonly configured: boolean;
  readonly supabase?: SupabaseAuthClient;
  private readonly serviceRoleKey?: string;
  private readonly adminRoles: string[];
  private readonly cacheTtlMs: number;
  private readonly cacheMax: number;
  private readonly clockTolerance: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CachedVerdict>();
  private readonly inflight = new Map<string, Promise<{ outcome: AuthOutcome; exp?: number }>>();
  readonly stats = { cacheHits: 0, localVerdicts: 0, remoteVerdicts: 0, unavailable: 0 };

  constructor(opts: AuthenticatorOptions) {
    this.configured = Boolean(opts.supabaseUrl && opts.serviceRoleKey);
    this.serviceRoleKey = opts.serviceRoleKey;
    this.adminRoles = opts.adminRoles;
    this.cacheTtlMs = opts.cacheTtlMs ?? 60_000;
    this.cacheMax = opts.cacheMaxEntries ?? 10_000;
    this.clockTolerance = opts.clockToleranceS ?? 5;
    this.now = opts.now ?? Date.now;
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

  /** Decides on an Authorization header value. Never throws; never logs the token. */
  async authenticate(authorization: string | undefined): Promise<AuthOutcome> {
    if (!this.configured || !this.supabase || !this.serviceRoleKey) {
      return deny(
        503,
        "auth_not_configured",
        "authentication is not configured on this server (set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY); " +
          "use the Unix socket for local access",
      );
    }
    const token = bearerToken(authorization);
    if (!token) {
      return deny(
        401,
        "invalid_token",
        "missing bearer token: send `Authorization: Bearer <access token>`",
      );
    }
    if (safeEqual(token, this.serviceRoleKey))
      return { ok: true, principal: { kind: "service_role" } };

    const key = sha256(token).toString("base64url");
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.until > this.now()) {
        this.stats.cacheHits++;
        return hit.outcome;
      }
      this.cache.delete(key);
    }
    // Concurrent requests with the same token share one decision (no thundering herd).
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.decide(token).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const { outcome, exp } = await pending;
    if (outcome.ok || outcome.status !== 503) this.remember(key, outcome, exp);
    return outcome;
  }

  private remember(key: string, outcome: AuthOutcome, exp: number | undefined): void {
    const now = this.now();
    const until = Math.min(
      now + this.cacheTtlMs,
      exp !== undefined ? exp * 1000 : now + this.cacheTtlMs,
    );
    if (until <= now) return;
    if (this.cache.size >= this.cacheMax) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { outcome, until });
  }

  private authorize(
    id: string,
    email: string | undefined,
    roles: string[],
    by: "jwks" | "supabase",
  ): AuthOutcome {
    if (roles.some((r) => this.adminRoles.includes(r))) {
      return { ok: true, principal: { kind: "user", id, email, roles, verifiedBy: by } };
    }
    return deny(
      403,
      "insufficient_scope",
      `user ${id} is authenticated but not an admin: app_metadata.role(s) must include one of ${this.adminRoles.join(", ")}`,
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

  private async decide(token: string): Promise<{ outcome: AuthOutcome; exp?: number }> {
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

    if (alg && ASYMMETRIC.includes(alg)) {
      const keys = await this.supabase!.keySetFor(kid);
      if (keys) {
        try {
          const { payload } = await jwtVerify(token, keys, {
            issuer: this.supabase!.issuer,
            audience: AUDIENCE,
            algorithms: ASYMMETRIC,
            requiredClaims: ["sub", "exp"],
            clockTolerance: this.clockTolerance,
            currentDate: new Date(this.now()),
          });
          this.stats.localVerdicts++;
          return {
            outcome: this.authorize(
              payload.sub!,
              typeof payload.email === "string" ? payload.email : undefined,
              appMetadataRoles(payload.app_metadata),
              "jwks",
            ),
            exp,
          };
        } catch (err) {
          if (
            !(err instanceof joseErrors.JWKSNoMatchingKey) &&
            !(err instanceof joseErrors.JWKSMultipleMatchingKeys)
          ) {
            this.stats.localVerdicts++;
            const why =
              err instanceof joseErrors.JWSSignatureVerificationFailed
                ? "signature verification failed"
                : (err as Error).message;
            return { outcome: deny(401, "invalid_token", `invalid token: ${why}`), exp };
          }
          // No usable key: let Supabase decide.
        }
      }
    }

    // Local verification cannot decide: ask Supabase.
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
          "supabase",
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
