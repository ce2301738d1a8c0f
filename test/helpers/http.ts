// HTTP test helpers: requests over TCP or a Unix socket, and an SSE reader that parses frames
// as they arrive (waitFor a matching event, or the end of the stream).
import type { IncomingHttpHeaders } from "node:http";
import { request } from "node:http";

export interface Target {
  base?: string;
  socketPath?: string;
}
export interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function call(
  t: Target,
  method: string,
  p: string,
  opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (payload !== undefined) headers["content-type"] ??= "application/json";
    const url = t.base ? new URL(p, t.base) : undefined;
    const r = request(
      url
        ? {
            method,
            hostname: url.hostname,
            port: url.port,
            path: url.pathname + url.search,
            headers,
          }
        : { method, socketPath: t.socketPath, path: p, headers },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body),
          }),
        );
      },
    );
    r.on("error", reject);
    if (payload !== undefined) r.write(payload);
    r.end();
  });
}

export interface Ev {
  id?: number;
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Opens an SSE response and parses frames as they arrive. */
export function sse(
  t: Target,
  method: string,
  p: string,
  opts: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{
  status: number;
  headers: IncomingHttpHeaders;
  events: Ev[];
  waitFor: (pred: (e: Ev) => boolean) => Promise<Ev>;
  ended: Promise<void>;
  close: () => void;
}> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {
      accept: "text/event-stream",
      ...(opts.headers ?? {}),
    };
    if (payload) headers["content-type"] = "application/json";
    const url = t.base ? new URL(p, t.base) : undefined;
    const r = request(
      url
        ? {
            method,
            hostname: url.hostname,
            port: url.port,
            path: url.pathname + url.search,
            headers,
          }
        : { method, socketPath: t.socketPath, path: p, headers },
      (res) => {
        const events: Ev[] = [];
        const waiters: Array<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }> = [];
        let buf = "";
        let endResolve!: () => void;
        const ended = new Promise<void>((r2) => (endResolve = r2));
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev: Ev = { event: "message", data: undefined };
            let isComment = true;
            for (const line of frame.split("\n")) {
              if (line.startsWith(":")) continue;
              isComment = false;
              const [k, ...rest] = line.split(": ");
              const v = rest.join(": ");
              if (k === "id") ev.id = Number(v);
              if (k === "event") ev.event = v;
              if (k === "data") ev.data = JSON.parse(v);
            }
            if (isComment) continue;
            events.push(ev);
            for (const w of [...waiters]) {
              if (w.pred(ev)) {
                waiters.splice(waiters.indexOf(w), 1);
                w.resolve(ev);
              }
            }
          }
        });
        res.on("end", endResolve);
        res.on("close", endResolve);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          events,
          ended,
          close: () => r.destroy(),
          waitFor: (pred) => {
            const found = events.find(pred);
            if (found) return Promise.resolve(found);
            return new Promise((r2) => waiters.push({ pred, resolve: r2 }));
          },
        });
      },
    );
    r.on("error", reject);
    if (payload) r.write(payload);
    r.end();
  });
}
