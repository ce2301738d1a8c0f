// Shared by the benchmarks: how long a service takes to answer SERVING over mTLS.
import path from "node:path";
import { HealthStatus_Status } from "../src/gen/controlplane.js";
import type { Config } from "../src/kernel/config.js";
import { healthCheck, runtimeClient } from "../src/runtime/client.js";

/** Polls HealthCheck every `pollMs` until SERVING (60 s at most); seconds since t0. */
export async function untilServing(
  config: Config,
  port: number,
  service: string,
  t0: number,
  pollMs: number,
): Promise<number> {
  const cp = path.join(config.secretsDir, "control-plane");
  const certs = {
    caFile: path.join(cp, "ca.pem"),
    certFile: path.join(cp, "cert.pem"),
    keyFile: path.join(cp, "key.pem"),
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const client = runtimeClient({ host: "127.0.0.1", port, serverName: service }, certs);
    try {
      const s = await healthCheck(client, 500);
      if (s.status === HealthStatus_Status.SERVING) return (performance.now() - t0) / 1000;
    } catch {
      // not up yet
    } finally {
      client.close();
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`${service} did not become SERVING within 60 s`);
}
