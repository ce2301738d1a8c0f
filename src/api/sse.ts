// Server-Sent Events over a raw Node response: `id:`/`event:`/`data:` frames, a keep-alive
// comment every 15 s, and a registry so shutdown can end every open stream.
import type { ServerResponse } from "node:http";

export interface SseStream {
  send(event: string, data: unknown, id?: number): void;
  end(): void;
  readonly closed: boolean;
  onClose(fn: () => void): void;
}

/** Bytes a client may fall behind before its stream is dropped. */
const MAX_BUFFERED = 8 * 1024 * 1024;

/** Writes the SSE response head and returns the stream. The caller owns `res` from now on. */
export function openSse(
  open: Set<SseStream>,
  res: ServerResponse,
  headers: Record<string, string> = {},
  keepAliveMs = 15_000,
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
      if (res.writableLength > MAX_BUFFERED) stream.end();
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

/** The open streams of one server, so its shutdown can end them. */
export class SseHub {
  private readonly streams = new Set<SseStream>();
  open(res: ServerResponse, headers: Record<string, string> = {}, keepAliveMs?: number): SseStream {
    return openSse(this.streams, res, headers, keepAliveMs);
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
