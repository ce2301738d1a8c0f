// Token buckets for calls the server makes on behalf of unauthenticated callers (remote token
// checks): one bucket per client and one shared by all, so neither one noisy client nor many
// clients together can make the server call Supabase at their pace.

export interface BucketSpec {
  /** Burst size. */
  capacity: number;
  /** Tokens added per second. */
  refillPerS: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly clients = new Map<string, Bucket>();
  private readonly global: Bucket;

  constructor(
    private readonly perClient: BucketSpec,
    private readonly all: BucketSpec,
    private readonly now: () => number = Date.now,
    /** Clients remembered at most (oldest forgotten first; a forgotten client starts full). */
    private readonly maxClients = 10_000,
  ) {
    this.global = { tokens: all.capacity, at: now() };
  }

  private refill(b: Bucket, spec: BucketSpec): void {
    const t = this.now();
    b.tokens = Math.min(spec.capacity, b.tokens + ((t - b.at) / 1000) * spec.refillPerS);
    b.at = t;
  }

  /** Takes one token from the client's bucket and the global one; false when either is empty. */
  take(client: string): boolean {
    let b = this.clients.get(client);
    if (!b) {
      b = { tokens: this.perClient.capacity, at: this.now() };
      if (this.clients.size >= this.maxClients) {
        const oldest = this.clients.keys().next().value;
        if (oldest !== undefined) this.clients.delete(oldest);
      }
    } else this.clients.delete(client); // re-insert: most recently used last
    this.clients.set(client, b);
    this.refill(b, this.perClient);
    this.refill(this.global, this.all);
    if (b.tokens < 1 || this.global.tokens < 1) return false;
    b.tokens -= 1;
    this.global.tokens -= 1;
    return true;
  }
}
