// Admin API throughput and latency on loopback (autocannon), bounded in time:
//   GET /health                          no auth; the real pipeline's control-plane check
//                                        (Docker version + terraform version), reused for 2 s
//   GET /services  service role key      constant-time key comparison
//   GET /services  user token, cache hit ES256 token verified once, then served from cache
//   GET /services  user token, miss/JWKS verdict cache off: local ES256 verification each time
//   GET /services  user token, miss/user verdict cache off: HS256 token, GET /auth/v1/user
//                                        against the local Supabase server each time
// /services uses a fixed in-memory health answer so the numbers are the API + auth cost,
// not gRPC health checks of deployed services.
// The load generator runs in its own process (bench/loadgen.mjs).
// Usage: npx tsx bench/api.ts   (BENCH_SECONDS per scenario, default 5; BENCH_CONNECTIONS, 10)
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pino } from "pino";
import { loadConfig } from "../src/kernel/config.js";
import { operations, type Pipeline } from "../src/api/pipeline.js";
import { createServer, type ApiServer } from "../src/api/server.js";
import { startFakeSupabase } from "../test/helpers/supabase-server.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const execFileP = promisify(execFile);

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

const LOADGEN = fileURLToPath(new URL("./loadgen.mjs", import.meta.url));

export interface Row {
  scenario: string;
  "req/s": number;
  "p50 ms": number;
  "p99 ms": number;
  requests: number;
  non2xx: number;
  note: string;
}

/**
 * autocannon in a separate process (bench/loadgen.mjs), so the server keeps its core.
 * `tokens`: a pool cycled per request, so concurrent requests never share a verdict.
 */
async function run(
  url: string,
  headers: Record<string, string>,
  tokens?: string[],
): Promise<AutocannonResult> {
  const job = JSON.stringify({ url, headers, tokens, seconds: SECONDS, connections: CONNECTIONS });
  const child = execFileP(process.execPath, [LOADGEN], {
    maxBuffer: 1 << 20,
    timeout: (SECONDS + 60) * 1000,
  });
  child.child.stdin?.end(job);
  const { stdout } = await child;
  return JSON.parse(stdout) as AutocannonResult;
}

function row(scenario: string, r: AutocannonResult, note = ""): Row {
  return {
    scenario,
    "req/s": Math.round(r.requests.average),
    "p50 ms": r.latency.p50,
    "p99 ms": r.latency.p99,
    requests: r.requests.total,
    non2xx: r.non2xx,
    note,
  };
}

/** The scenarios, as rows; `cacheMiss: false` skips the two cache-off scenarios. */
export async function apiScenarios(opts: { cacheMiss?: boolean } = {}): Promise<Row[]> {
  const sb = await startFakeSupabase();
  const fixed: Pipeline = {
    ...operations,
    health: async () => [
      {
        name: "api",
        status: "SERVING",
        phase: "running",
        restarts: 0,
        uptimeSeconds: 12.3,
        port: 20000,
      },
    ],
  };
  const config = loadConfig({
    ...process.env,
    SUPABASE_URL: sb.url,
    SUPABASE_SERVICE_ROLE_KEY: sb.secretKey,
    IAC_LOG_LEVEL: "silent",
  });
  const servers: ApiServer[] = [];
  const start = async (cacheTtlMs?: number) => {
    const s = await createServer({
      config,
      pipeline: fixed,
      // As `iac serve` runs by default: info level (written to /dev/null here).
      logger:
        process.env.BENCH_LOG === "silent"
          ? pino({ level: "silent" })
          : pino({ level: "info" }, pino.destination("/dev/null")),
      auth: cacheTtlMs === undefined ? {} : { cacheTtlMs },
    });
    servers.push(s);
    const { httpUrl } = await s.listen({ http: { host: "127.0.0.1", port: 0 }, socketPath: false });
    return { s, url: httpUrl! };
  };
  const rows: Row[] = [];
  try {
    const cached = await start();
    const health = await run(`${cached.url}/health`, {});
    rows.push(row("GET /health", health, "real controlPlaneHealth, reused 2 s"));

    rows.push(
      row(
        "GET /services (service role key)",
        await run(`${cached.url}/services`, { authorization: `Bearer ${sb.secretKey}` }),
      ),
    );

    const admin = await sb.token({ appMetadata: { roles: ["iac-admin"] } });
    sb.resetCounts();
    const hit = await run(`${cached.url}/services`, { authorization: `Bearer ${admin}` });
    rows.push(
      row(
        "GET /services (user token, cache hit)",
        hit,
        `JWKS fetches ${sb.counts.jwks}, /user calls ${sb.counts.user}`,
      ),
    );

    if (opts.cacheMiss === false) return rows;
    const noCache = await start(0); // verdict cache off: every request is decided again
    const esPool = await Promise.all(
      Array.from({ length: 500 }, () => sb.token({ appMetadata: { roles: ["iac-admin"] } })),
    );
    sb.resetCounts();
    const jwks = await run(`${noCache.url}/services`, {}, esPool);
    rows.push(
      row(
        "GET /services (user token, miss: local JWKS)",
        jwks,
        `local verdicts ${noCache.s.auth.stats.localVerdicts}, /user calls ${sb.counts.user}`,
      ),
    );

    const u = sb.addUser({ app_metadata: { roles: ["iac-admin"] } });
    const hsPool = await Promise.all(
      Array.from({ length: 500 }, () => sb.token({ alg: "HS256", sub: u.id })),
    );
    sb.resetCounts();
    const remote = await run(`${noCache.url}/services`, {}, hsPool);
    rows.push(
      row(
        "GET /services (user token, miss: /auth/v1/user)",
        remote,
        `/user calls ${sb.counts.user}`,
      ),
    );
  } finally {
    for (const s of servers) await s.close();
    await sb.close();
  }
  return rows;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await apiScenarios();
  console.log(
    `admin API on loopback: ${CONNECTIONS} connections, ${SECONDS} s per scenario, load generator (autocannon) in its own process (node ${process.version})`,
  );
  console.table(rows);
}
