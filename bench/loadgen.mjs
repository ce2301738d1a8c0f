// The load generator of bench/api.ts, in its own process (so it does not share the server's
// event loop or core): autocannon against one URL, optionally cycling a pool of bearer tokens
// so that no two concurrent requests share an auth verdict. Reads its job as JSON from stdin,
// prints autocannon's result as JSON on stdout.
//   {"url", "headers"?, "tokens"?: string[], "seconds", "connections"}
import { createRequire } from "node:module";

const autocannon = createRequire(import.meta.url)("autocannon");
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let i = 0;
const requests = job.tokens
  ? [
      {
        setupRequest: (req) => {
          req.headers = {
            ...req.headers,
            authorization: `Bearer ${job.tokens[i++ % job.tokens.length]}`,
          };
          return req;
        },
      },
    ]
  : undefined;
const result = await autocannon({
  url: job.url,
  headers: job.headers ?? {},
  connections: job.connections,
  duration: job.seconds,
  pipelining: 1,
  requests,
});
process.stdout.write(
  JSON.stringify({
    requests: { average: result.requests.average, total: result.requests.total },
    latency: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
  }) + "\n",
);
