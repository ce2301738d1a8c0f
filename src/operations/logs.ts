// `iac logs` / GET /services/:name/logs: a service's log lines from its runner (StreamLogs).
import type { Config } from "../kernel/config.js";
import { runtimeClient, streamLogs as streamRuntimeLogs } from "../runtime/client.js";
import { NotFoundError } from "../kernel/errors.js";
import { controlPlaneCerts, deployedServices } from "./project.js";
import { serviceSpiffeId } from "../mesh/pki.js";
import { swarmLogs } from "./swarm-status.js";

export async function streamLogs(
  config: Config,
  project: string,
  service: string,
  opts: { tail: number; follow: boolean },
  onLine: (l: { ts: string; msg: string; stream: string }) => void,
  signal: AbortSignal,
): Promise<void> {
  if (config.target === "swarm") return swarmLogs(config, project, service, opts, onLine, signal);
  const services = await deployedServices(config, project);
  const svc = services[service];
  if (!svc) {
    throw new NotFoundError(
      `no service '${service}' in project '${project}'`,
      `deployed services: ${Object.keys(services).join(", ") || "(none)"}`,
    );
  }
  const certs = await controlPlaneCerts(config);
  const client = runtimeClient(
    {
      host: "127.0.0.1",
      port: svc.host_port,
      serverName: service,
      spiffeId: serviceSpiffeId(project, service),
    },
    certs,
  );
  try {
    await streamRuntimeLogs(client, opts, onLine, signal);
  } finally {
    client.close();
  }
}
