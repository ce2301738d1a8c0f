// gRPC client (mutual TLS) to a service's Runtime API: through its Envoy sidecar, or the
// runner itself with IAC_SIDECAR=none. The server cert must chain to our CA and carry the
// service name as a DNS SAN and the project's SPIFFE id as URI SAN; we present the control
// plane's client cert.
import { readFileSync } from "node:fs";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { credentials, Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { IacError } from "../kernel/errors.js";
import {
  HealthStatus_Status,
  RuntimeClient,
  type HealthStatus,
  type LogLine,
} from "../gen/controlplane.js";
import type { CertPaths } from "../kernel/types.js";

export interface RuntimeTarget {
  host: string;
  port: number;
  /** Expected DNS SAN of the server certificate (the service name). */
  serverName: string;
  /**
   * Expected URI SAN (`spiffe://<project>/<service>`). The dev CA is shared by every project,
   * so the DNS name alone would accept the same service name of another project.
   */
  spiffeId?: string;
}

/** Why `peer` is not the expected service, or undefined when it is. */
export function peerIdentityProblem(
  peer: Pick<PeerCertificate, "subjectaltname" | "subject">,
  serverName: string,
  spiffeId?: string,
): string | undefined {
  const err = checkServerIdentity(serverName, peer as PeerCertificate);
  if (err) return err.message;
  if (spiffeId === undefined) return undefined;
  const uris = (peer.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
  if (!uris.includes(spiffeId))
    return `the server certificate's URI SAN is ${uris.join(", ") || "missing"}, expected ${spiffeId}`;
  return undefined;
}

export class RuntimeCallError extends IacError {
  override name = "RuntimeCallError";
  constructor(
    message: string,
    readonly grpcCode?: GrpcStatus,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new IacError(
      `cannot read the control plane's ${what} ${file}: ${(err as Error).message}`,
      "run `iac deploy` (it creates the certificates) or check IAC_SECRETS_DIR",
      { cause: err },
    );
  }
}

/** A Runtime client over mTLS. Close it with `client.close()`. */
export function runtimeClient(target: RuntimeTarget, certs: CertPaths): RuntimeClient {
  const ca = readPem(certs.caFile, "CA certificate");
  const key = readPem(certs.keyFile, "client key");
  const cert = readPem(certs.certFile, "client certificate");
  const creds = credentials.createSsl(ca, key, cert, {
    // grpc-js checks the chain against `ca`; this pins the identity to the service's SAN.
    checkServerIdentity: (_host: string, peer: PeerCertificate) => {
      const problem = peerIdentityProblem(peer, target.serverName, target.spiffeId);
      return problem ? new Error(problem) : undefined;
    },
  });
  return new RuntimeClient(`${target.host}:${target.port}`, creds, {
    "grpc.ssl_target_name_override": target.serverName,
    "grpc.default_authority": target.serverName,
    // A container that is still starting: reconnect quickly instead of grpc's 1 s..120 s.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
  });
}

function callError(err: ServiceError, what: string): RuntimeCallError {
  const hint =
    err.code === GrpcStatus.UNAVAILABLE
      ? "is the container running and its port published? (`iac health`, `docker ps`)"
      : err.code === GrpcStatus.DEADLINE_EXCEEDED
        ? "the service did not answer in time"
        : undefined;
  return new RuntimeCallError(`${what}: ${err.details || err.message}`, err.code, hint, {
    cause: err,
  });
}

/** One HealthCheck call with a deadline; an abort cancels the call at once. */
export function healthCheck(
  client: RuntimeClient,
  deadlineMs: number,
  signal?: AbortSignal,
): Promise<HealthStatus> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      call.cancel();
      reject(signal!.reason as Error);
    };
    const call = client.healthCheck(
      {},
      new Metadata(),
      { deadline: new Date(Date.now() + deadlineMs) },
      (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(callError(err, "HealthCheck failed"));
        else resolve(res);
      },
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A status after which waiting longer cannot help: main() gave up, or it exited non-zero inside
 * the runner's stability window (a restart in the window is reported with the failed run's
 * exit code). The runner only says SERVING once main() has run the window without a restart.
 */
export function isDefinitiveFailure(s: HealthStatus): boolean {
  if (s.status !== HealthStatus_Status.NOT_SERVING) return false;
  return s.phase === "failed" || (s.exitCode !== undefined && s.exitCode !== 0);
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `promise`, or a rejection as soon as `signal` aborts (the call is abandoned). */
function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Retries HealthCheck (backoff 100 ms .. 1 s) until SERVING, a definitive failure, the
 * deadline or an abort (which ends the wait at once). Returns the last status received;
 * throws the last error when none was.
 */
export async function waitForServing(
  target: RuntimeTarget,
  certs: CertPaths,
  opts: {
    deadlineMs: number;
    onAttempt?: (attempt: number, result: HealthStatus | Error) => void;
    signal?: AbortSignal;
  },
): Promise<HealthStatus> {
  const client = runtimeClient(target, certs);
  const deadline = Date.now() + opts.deadlineMs;
  let last: HealthStatus | undefined;
  let lastErr: Error | undefined;
  let delay = 100;
  try {
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      const remaining = deadline - Date.now();
      try {
        last = await abortable(
          healthCheck(client, Math.max(100, Math.min(5_000, remaining))),
          opts.signal,
        );
        opts.onAttempt?.(attempt, last);
        if (last.status === HealthStatus_Status.SERVING || isDefinitiveFailure(last)) return last;
      } catch (err) {
        opts.signal?.throwIfAborted();
        lastErr = err as Error;
        opts.onAttempt?.(attempt, lastErr);
      }
      if (Date.now() + delay >= deadline) break;
      await sleep(delay, opts.signal);
      delay = Math.min(delay * 2, 1_000);
    }
  } finally {
    client.close();
  }
  if (last) return last;
  throw new RuntimeCallError(
    `${target.serverName} at ${target.host}:${target.port} did not answer within ${Math.round(opts.deadlineMs / 1000)} s: ${lastErr?.message ?? "no attempt"}`,
    lastErr instanceof RuntimeCallError ? lastErr.grpcCode : undefined,
    "check the container's logs (`docker logs <project>-<service>`) and its certificates",
    { cause: lastErr },
  );
}

/**
 * A consumer that can be full (stdout into a slow pipe): the stream pauses while `full()` and
 * resumes when `onDrain` calls back. gRPC's flow control then holds the runner back, whose ring
 * buffer drops the oldest lines and tells the reader how many ("N lines skipped").
 */
export interface LogFlow {
  full(): boolean;
  onDrain(resume: () => void): void;
}

/** Streams log lines (`tail` first, then new ones while `follow`) until the end or abort. */
export function streamLogs(
  client: RuntimeClient,
  opts: { tail: number; follow: boolean; service?: string; flow?: LogFlow },
  onLine: (line: { ts: string; msg: string; stream: string }) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return resolve();
    const call = client.streamLogs({
      service: opts.service ?? "",
      tail: opts.tail,
      follow: opts.follow,
    });
    const done = (err?: Error) => {
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    };
    // Ends at once, also while paused (a paused stream would hold its end behind unread data).
    const onAbort = () => {
      call.cancel();
      done();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    let paused = false;
    call.on("data", (line: LogLine) => {
      onLine({ ts: (line.ts ?? new Date()).toISOString(), msg: line.msg, stream: line.stream });
      if (!paused && opts.flow?.full()) {
        paused = true;
        call.pause();
        opts.flow.onDrain(() => {
          paused = false;
          call.resume();
        });
      }
    });
    call.on("error", (err: ServiceError) => {
      if (err.code === GrpcStatus.CANCELLED && signal?.aborted) done();
      else done(callError(err, "StreamLogs failed"));
    });
    call.on("end", () => done());
  });
}

/** The last `lines` lines of main()'s output (the runner's buffer), within `timeoutMs`. */
export async function recentLogs(
  target: RuntimeTarget,
  certs: CertPaths,
  lines: number,
  timeoutMs = 3_000,
): Promise<string[]> {
  const client = runtimeClient(target, certs);
  const out: string[] = [];
  try {
    await streamLogs(
      client,
      { tail: lines, follow: false },
      (l) => out.push(l.msg),
      AbortSignal.timeout(timeoutMs),
    );
  } finally {
    client.close();
  }
  return out.slice(-lines);
}
