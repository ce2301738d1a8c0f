// Server-Sent Events over a raw Node response: `id:`/`event:`/`data:` frames, a keep-alive
// comment every 15 s, and a registry so shutdown can end every open stream.
import type { ServerResponse } from "node:http";

export interface SseStream {
  send(event: string, data: unknown, id?: number): void;
  end(): void;
  readonly closed: boolean;
  onClose(fn: () => void): void;
}

/** Bytes a client may fall behind before its stream is dropped (default). */
export const MAX_BUFFERED = 1024 * 1024;

export interface SseLimits {
  /** Open streams for the whole server. */
  maxStreams: number;
  /** Open streams per principal (service role, one user, the socket). */
  maxPerPrincipal: number;
  /** Bytes a client may fall behind before its stream is dropped. */
  maxBufferedBytes: number;
}

export const DEFAULT_SSE_LIMITS: SseLimits = {
  maxStreams: 64,
  maxPerPrincipal: 8,
  maxBufferedBytes: MAX_BUFFERED,
};

/** Writes the SSE response head and returns the stream. The caller owns `res` from now on. */
export function openSse(
  open: Set<SseStream>,
  res: ServerResponse,
  headers: Record<string, string> = {},
  keepAliveMs = 15_000,
  maxBuffered = MAX_BUFFERED,
): SseStream {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
    ...headers,
  });
  res.flushHeaders();
  let closed = false;
  const closers: Array<() => void> = [];
  const timer = setInterval(() => {
    if (!closed) res.write(": keep-alive\n\n");
  }, keepAliveMs);
  timer.unref();
  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    open.delete(stream);
    for (const fn of closers) fn();
  };
  res.on("close", finish);
  const stream: SseStream = {
    send(event, data, id) {
      if (closed) return;
      const json = JSON.stringify(data);
      let frame = "";
      if (id !== undefined) frame += `id: ${id}\n`;
      frame += `event: ${event}\n`;
      // JSON.stringify never emits raw newlines, so one data line is enough.
      frame += `data: ${json}\n\n`;
      res.write(frame);
      if (res.writableLength > maxBuffered) {
        // A client that does not read: drop it instead of buffering without bound.
        res.destroy();
        finish();
      }
    },
    end() {
      if (closed) return;
      res.end();
      finish();
    },
    get closed() {
      return closed;
    },
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
  };
  open.add(stream);
  return stream;
}

/** The open streams of one server, so its shutdown can end them; caps how many are open. */
export class SseHub {
  private readonly streams = new Set<SseStream>();
  private readonly perPrincipal = new Map<string, number>();
  readonly limits: SseLimits;

  constructor(limits: Partial<SseLimits> = {}) {
    this.limits = { ...DEFAULT_SSE_LIMITS, ...limits };
  }

  /** Whether `principal` may open one more stream now (check before hijacking the reply). */
  admits(principal: string): boolean {
    return (
      this.streams.size < this.limits.maxStreams &&
      (this.perPrincipal.get(principal) ?? 0) < this.limits.maxPerPrincipal
    );
  }

  open(
    res: ServerResponse,
    headers: Record<string, string> = {},
    keepAliveMs?: number,
    principal = "anonymous",
  ): SseStream {
    const stream = openSse(this.streams, res, headers, keepAliveMs, this.limits.maxBufferedBytes);
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    stream.onClose(() => {
      const n = (this.perPrincipal.get(principal) ?? 1) - 1;
      if (n <= 0) this.perPrincipal.delete(principal);
      else this.perPrincipal.set(principal, n);
    });
    return stream;
  }
  get size(): number {
    return this.streams.size;
  }
  endAll(): void {
    for (const s of [...this.streams]) s.end();
  }
}

/** True when the client asked for an event stream. */
export function wantsEventStream(accept: string | undefined): boolean {
  return typeof accept === "string" && /(^|,)\s*text\/event-stream\b/i.test(accept);
}
