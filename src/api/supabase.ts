// Client for the two Supabase Auth endpoints the admin API needs:
//   GET {url}/auth/v1/user                     (apikey + bearer): the authoritative check
//   GET {url}/auth/v1/.well-known/jwks.json    (asymmetric public keys, cacheable 10 min)
// Errors a user's token causes come back as verdicts; anything that means "Supabase cannot
// answer right now" (network, timeout, 5xx, 429, our API key refused) is thrown as
// SupabaseUnavailableError so the caller fails closed (503).
import { type ErrorCode, IacError } from "../kernel/errors.js";
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";

export class SupabaseUnavailableError extends IacError {
  override name = "SupabaseUnavailableError";
  override readonly code: ErrorCode = "unavailable";
}

export interface SupabaseUser {
  id: string;
  aud?: string;
  role?: string;
  email?: string;
  app_metadata?: Record<string, unknown>;
  user_metadata?: Record<string, unknown>;
  banned_until?: string | null;
}

export type UserVerdict =
  | { ok: true; user: SupabaseUser }
  /** Supabase judged the token: 401 no_authorization, 403 bad_jwt / session_not_found / ... */
  | { ok: false; status: number; code: string; message: string };

export interface SupabaseClientOptions {
  url: string;
  apiKey: string;
  /** Per-request timeout (ms). */
  timeoutMs?: number;
  /** Upper bound for the JWKS cache lifetime, whatever Cache-Control says (ms). */
  jwksMaxAgeMs?: number;
  /** Minimum time between two JWKS fetches, whatever triggers them (unknown `kid`, expiry, failure) (ms). */
  jwksRefetchCooldownMs?: number;
  now?: () => number;
}

interface JwksCache {
  keys: JSONWebKeySet;
  getKey: JWTVerifyGetKey;
  kids: Set<string>;
  fetchedAt: number;
  expiresAt: number;
}

/** Parses Supabase's error bodies: `{code, error_code, msg}`, `{code, message}` (2024-01-01), Kong's `{message}`. */
export function parseAuthError(body: unknown): { code?: string; message: string } {
  if (!body || typeof body !== "object") return { message: "" };
  const b = body as Record<string, unknown>;
  const code =
    typeof b.error_code === "string"
      ? b.error_code
      : typeof b.code === "string"
        ? b.code
        : undefined;
  const message =
    typeof b.msg === "string"
      ? b.msg
      : typeof b.message === "string"
        ? b.message
        : typeof b.error_description === "string"
          ? b.error_description
          : "";
  return { code, message };
}

function maxAgeMs(cacheControl: string | null): number | undefined {
  const m = cacheControl ? /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl) : null;
  return m ? Number(m[1]) * 1000 : undefined;
}

export class SupabaseAuthClient {
  readonly url: string;
  /** The `iss` Supabase puts in access tokens. */
  readonly issuer: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly jwksMaxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private jwksCache?: JwksCache;
  private jwksInflight?: Promise<JwksCache | undefined>;
  private lastJwksAttempt = -Infinity;
  readonly counters = { userCalls: 0, jwksFetches: 0 };

  constructor(opts: SupabaseClientOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.issuer = `${this.url}/auth/v1`;
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.jwksMaxAgeMs = opts.jwksMaxAgeMs ?? 600_000;
    this.cooldownMs = opts.jwksRefetchCooldownMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  private async get(path: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, {
        headers: { accept: "application/json", ...headers },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: "error",
      });
    } catch (err) {
      const why =
        err instanceof Error
          ? err.cause instanceof Error
            ? err.cause.message
            : err.message
          : String(err);
      throw new SupabaseUnavailableError(`Supabase Auth at ${this.url} is unreachable: ${why}`);
    }
  }

  /** GET /auth/v1/user with the service key as apikey and the user's token as bearer. */
  async getUser(token: string): Promise<UserVerdict> {
    this.counters.userCalls++;
    const res = await this.get("/auth/v1/user", {
      apikey: this.apiKey,
      authorization: `Bearer ${token}`,
      "x-supabase-api-version": "2024-01-01",
    });
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    if (res.status === 200) {
      const user = body as SupabaseUser | undefined;
      if (!user || typeof user.id !== "string") {
        throw new SupabaseUnavailableError("Supabase Auth answered 200 without a user object");
      }
      return { ok: true, user };
    }
    const { code, message } = parseAuthError(body);
    if (res.status === 429 || res.status >= 500) {
      throw new SupabaseUnavailableError(
        `Supabase Auth answered ${res.status}${code ? ` ${code}` : ""}: ${message}`,
      );
    }
    if (!code) {
      // No Auth error code: the API gateway refused our apikey (e.g. "Invalid API key").
      throw new SupabaseUnavailableError(
        `Supabase refused the service role key (${res.status}${message ? `: ${message}` : ""}); check SUPABASE_SERVICE_ROLE_KEY`,
      );
    }
    return { ok: false, status: res.status, code, message };
  }

  private async fetchJwks(): Promise<JwksCache | undefined> {
    this.lastJwksAttempt = this.now();
    this.counters.jwksFetches++;
    const res = await this.get("/auth/v1/.well-known/jwks.json", { apikey: this.apiKey });
    if (!res.ok) throw new SupabaseUnavailableError(`JWKS answered ${res.status}`);
    const body = (await res.json()) as JSONWebKeySet;
    if (!body || !Array.isArray(body.keys))
      throw new SupabaseUnavailableError("JWKS body has no `keys` array");
    // Only asymmetric public keys are acceptable verification keys.
    const keys = body.keys.filter(
      (k) => k && (k.kty === "EC" || k.kty === "RSA" || k.kty === "OKP") && !("d" in k),
    );
    const ttl = Math.min(
      maxAgeMs(res.headers.get("cache-control")) ?? this.jwksMaxAgeMs,
      this.jwksMaxAgeMs,
    );
    const now = this.now();
    const set: JSONWebKeySet = { keys };
    return {
      keys: set,
      getKey: createLocalJWKSet(set),
      kids: new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === "string")),
      fetchedAt: now,
      expiresAt: now + ttl,
    };
  }

  private refresh(): Promise<JwksCache | undefined> {
    if (!this.jwksInflight) {
      this.jwksInflight = this.fetchJwks()
        .then((c) => (this.jwksCache = c))
        .catch(() => this.jwksCache) // unreachable: keep the previous keys, if any
        .finally(() => (this.jwksInflight = undefined));
    }
    return this.jwksInflight;
  }

  /**
   * The verification key set holding `kid`, or undefined when no key with that kid is known
   * (after at most one refetch, rate-limited by the cooldown) or the JWKS is unavailable.
   */
  async keySetFor(kid: string | undefined): Promise<JWTVerifyGetKey | undefined> {
    let cache = this.jwksCache;
    if (!cache || cache.expiresAt <= this.now()) {
      // Expired or never fetched. Whatever triggers it (expiry, a failed attempt, a flood of
      // tokens), the JWKS is fetched at most once per cooldown interval.
      if (this.jwksInflight || this.now() - this.lastJwksAttempt >= this.cooldownMs)
        cache = await this.refresh();
    }
    if (!cache) return undefined;
    const known = (c: JwksCache) => (kid === undefined ? c.kids.size > 0 : c.kids.has(kid));
    if (known(cache)) return cache.getKey;
    if (
      this.now() - cache.fetchedAt >= this.cooldownMs &&
      this.now() - this.lastJwksAttempt >= this.cooldownMs
    ) {
      cache = await this.refresh(); // unknown kid: the keys may have rotated; refetch once
      if (cache && known(cache)) return cache.getKey;
    }
    return undefined;
  }
}
