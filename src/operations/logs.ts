// `iac logs` / GET /services/:name/logs: services' log lines from their runners (StreamLogs).
import type { Config } from "../kernel/config.js";
import { type LogFlow, runtimeClient, streamLogs as streamRuntimeLogs } from "../runtime/client.js";
import { NotFoundError } from "../kernel/errors.js";
import { deployedServices, readOnlyControlPlaneCerts } from "./project.js";
import { serviceSpiffeId } from "../mesh/pki.js";
import { deployedSwarmServices, swarmLogs } from "./swarm-status.js";

export interface ServiceLogLine {
  service: string;
  ts: string;
  msg: string;
  stream: string;
}

export async function streamLogs(
  config: Config,
  project: string,
  service: string,
  opts: { tail: number; follow: boolean },
  onLine: (l: { ts: string; msg: string; stream: string }) => void,
  signal: AbortSignal,
): Promise<void> {
  await streamProjectLogs(config, project, [service], opts, onLine, signal);
}

/**
 * Lines of several services (every deployed one when `services` is empty), merged as they
 * arrive. Each runner's buffer is read in parallel; a line carries its service's name.
 */
export async function streamProjectLogs(
  config: Config,
  project: string,
  services: string[],
  /** flow: pause reading while the consumer is full (backpressure, local target). */
  opts: { tail: number; follow: boolean; flow?: LogFlow },
  onLine: (l: ServiceLogLine) => void,
  signal: AbortSignal,
): Promise<string[]> {
  if (config.target === "swarm") {
    const all = await deployedSwarmServices(config, project);
    const names = services.length ? services : [...all].sort();
    await Promise.all(
      names.map((name) =>
        swarmLogs(config, project, name, opts, (l) => onLine({ service: name, ...l }), signal),
      ),
    );
    return names;
  }
  const deployed = await deployedServices(config, project);
  const names = services.length ? services : Object.keys(deployed).sort();
  for (const name of names) {
    if (!deployed[name])
      throw new NotFoundError(
        `no service '${name}' in project '${project}'`,
        `deployed services: ${Object.keys(deployed).join(", ") || "(none)"}`,
      );
  }
  const certs = await readOnlyControlPlaneCerts(config);
  await Promise.all(
    names.map(async (name) => {
      const client = runtimeClient(
        {
          host: "127.0.0.1",
          port: deployed[name]!.host_port,
          serverName: name,
          spiffeId: serviceSpiffeId(project, name),
        },
        certs,
      );
      try {
        await streamRuntimeLogs(client, opts, (l) => onLine({ service: name, ...l }), signal);
      } finally {
        client.close();
      }
    }),
  );
  return names;
}
