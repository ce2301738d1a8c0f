// Swarm target: watching a rollout to its end, per-task health (gRPC HealthCheck through each
// task's Envoy at <node address>:<published port>) and logs merged over replicas.
import type Docker from "dockerode";
import type { Config } from "../kernel/config.js";
import { NotFoundError, errorMessage } from "../kernel/errors.js";
import { type EventSink, logEvent } from "../kernel/events.js";
import type { CertPaths } from "../kernel/types.js";
import { dockerClient } from "../platform/docker.js";
import { healthCheck, runtimeClient } from "../runtime/client.js";
import { monitorSeconds, readSwarmVars, swarmDir } from "../stack/swarm.js";
import { readOnlyControlPlaneCerts } from "./project.js";
import { type ServiceHealth, statusName } from "./status.js";

/** Swarm's name for a project's service (infra/swarm/main.tf). */
export function swarmServiceName(project: string, service: string): string {
  return `${project}-${service}`;
}

interface SwarmTask {
  ID: string;
  Slot?: number;
  NodeID?: string;
  DesiredState: string;
  CreatedAt: string;
  Status: { State: string; Err?: string; Message?: string };
}

interface SwarmNode {
  ID: string;
  Description?: { Hostname?: string };
  Status?: { State?: string; Addr?: string };
}

interface SwarmServiceInfo {
  ID: string;
  UpdatedAt?: string;
  PreviousSpec?: unknown;
  Spec: { Mode?: { Replicated?: { Replicas?: number } } };
  UpdateStatus?: { State?: string; StartedAt?: string; Message?: string };
}

export interface Rollout {
  ok: boolean;
  /** Why it failed: Swarm's update message, the failed tasks' errors, their last log lines. */
  reason: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inspectService(docker: Docker, name: string): Promise<SwarmServiceInfo> {
  return (await docker.getService(name).inspect()) as SwarmServiceInfo;
}

async function tasksOf(docker: Docker, serviceId: string): Promise<SwarmTask[]> {
  return (await docker.listTasks({ filters: { service: [serviceId] } })) as SwarmTask[];
}

/** Last lines a task wrote (Swarm keeps the logs of failed tasks on their node). */
async function taskLogTail(docker: Docker, taskId: string, lines = 5): Promise<string[]> {
  try {
    const task = docker.getTask(taskId) as unknown as { logs(o: object): Promise<Buffer> };
    const buf = (await task.logs({
      stdout: true,
      stderr: true,
      tail: lines,
      follow: false,
    } as never)) as unknown as Buffer;
    return demux(buf).map((f) => f.text);
  } catch {
    return [];
  }
}

/**
 * Waits until every service's rollout ended: all replicas running (Swarm reports a task
 * running only once its health check passed) or the update rolled back / paused.
 */
export async function waitForRollouts(
  config: Config,
  project: string,
  services: string[],
  startedMs: number,
  onEvent: EventSink,
): Promise<Record<string, Rollout>> {
  const docker = dockerClient(config);
  const deadline = Date.now() + config.healthTimeoutMs + 3 * monitorSeconds() * 1000;
  const out: Record<string, Rollout> = {};
  await Promise.all(
    services.map(async (name) => {
      const swarmName = swarmServiceName(project, name);
      let last = "";
      while (Date.now() < deadline) {
        const svc = await inspectService(docker, swarmName);
        const us = svc.UpdateStatus;
        // An update of this apply (the manager stamps UpdatedAt when the spec changes).
        const updated =
          svc.PreviousSpec !== undefined &&
          svc.UpdatedAt !== undefined &&
          Date.parse(svc.UpdatedAt) >= startedMs - 2000;
        const current = us?.StartedAt !== undefined && Date.parse(us.StartedAt) >= startedMs - 2000;
        const state = current ? (us?.State ?? "") : updated ? "pending" : "none";
        if (state !== last) {
          onEvent(logEvent("health", `swarm service ${swarmName}: update ${state}`, name));
          last = state;
        }
        if (["rollback_completed", "rollback_paused", "paused"].includes(state)) {
          const tasks = await tasksOf(docker, svc.ID);
          const failed = tasks
            .filter((t) => t.Status.Err && Date.parse(t.CreatedAt) >= startedMs - 2000)
            .slice(0, 3);
          const details: string[] = [];
          for (const t of failed) {
            details.push(`task ${t.ID.slice(0, 12)} (replica ${t.Slot ?? "?"}): ${t.Status.Err}`);
            for (const l of await taskLogTail(docker, t.ID)) details.push(`  | ${l}`);
          }
          out[name] = {
            ok: false,
            reason:
              `update ${state === "paused" ? "paused" : "rolled back"} by Swarm: ${us?.Message ?? state}` +
              (details.length ? `\n${details.join("\n")}` : "") +
              "\nthe previous version keeps serving",
          };
          return;
        }
        if (state === "none" || state === "completed") {
          const want = svc.Spec.Mode?.Replicated?.Replicas ?? 1;
          const tasks = await tasksOf(docker, svc.ID);
          const running = tasks.filter(
            (t) => t.DesiredState === "running" && t.Status.State === "running",
          );
          if (running.length >= want) {
            out[name] = { ok: true, reason: "" };
            return;
          }
        }
        await sleep(1000);
      }
      out[name] = {
        ok: false,
        reason: `rollout of ${swarmName} did not finish in time (last update state: ${last})`,
      };
    }),
  );
  return out;
}

export type TaskHealth = ServiceHealth;

async function nodesById(docker: Docker): Promise<Map<string, SwarmNode>> {
  const nodes = (await docker.listNodes()) as SwarmNode[];
  return new Map(nodes.map((n) => [n.ID, n]));
}

/** One row per task that should run (desired state running), health-checked over mTLS. */
export async function taskHealth(
  config: Config,
  project: string,
  service: string,
  certs: CertPaths,
  opts: { deadlineMs?: number } = {},
): Promise<TaskHealth[]> {
  const docker = dockerClient(config);
  const vars = await readSwarmVars(swarmDir(config, project));
  const port = vars?.services[service]?.published_port;
  const deadline = Date.now() + (opts.deadlineMs ?? 0);
  for (;;) {
    const rows = await taskHealthOnce(docker, project, service, port, certs);
    const settled = rows.length > 0 && rows.every((r) => r.status === "SERVING");
    if (settled || Date.now() >= deadline) return rows;
    await sleep(1000);
  }
}

async function taskHealthOnce(
  docker: Docker,
  project: string,
  service: string,
  port: number | undefined,
  certs: CertPaths,
): Promise<TaskHealth[]> {
  const svc = await inspectService(docker, swarmServiceName(project, service));
  const nodes = await nodesById(docker);
  const tasks = (await tasksOf(docker, svc.ID))
    .filter((t) => t.DesiredState === "running")
    .sort((a, b) => (a.Slot ?? 0) - (b.Slot ?? 0));
  const want = svc.Spec.Mode?.Replicated?.Replicas ?? 1;
  const rows = await Promise.all(
    tasks.map(async (t): Promise<TaskHealth> => {
      const node = t.NodeID ? nodes.get(t.NodeID) : undefined;
      const base: TaskHealth = {
        name: service,
        node: node?.Description?.Hostname ?? t.NodeID?.slice(0, 12),
        replica: t.Slot,
        task: t.ID.slice(0, 12),
        taskState: t.Status.State,
        port,
        status: "UNREACHABLE",
      };
      const addr = node?.Status?.Addr;
      if (t.Status.State !== "running" || !addr || !port || node?.Status?.State !== "ready") {
        return {
          ...base,
          status: "NOT_SERVING",
          message: `task ${t.Status.State}${node?.Status?.State && node.Status.State !== "ready" ? `, node ${node.Status.State}` : ""}${t.Status.Err ? `: ${t.Status.Err}` : ""}`,
        };
      }
      const client = runtimeClient({ host: addr, port, serverName: service }, certs);
      try {
        const s = await healthCheck(client, 5_000);
        return {
          ...base,
          status: statusName(s),
          phase: s.phase,
          exitCode: s.exitCode,
          restarts: s.restarts,
          uptimeSeconds: Math.round(s.uptimeSeconds * 10) / 10,
          message: s.message || undefined,
        };
      } catch (err) {
        return { ...base, message: `${addr}:${port}: ${errorMessage(err)}` };
      } finally {
        client.close();
      }
    }),
  );
  for (let i = rows.length; i < want; i++) {
    rows.push({
      name: service,
      status: "NOT_SERVING",
      message: `replica missing: ${rows.length} of ${want} tasks scheduled`,
      port,
    });
  }
  return rows;
}

export async function deployedSwarmServices(config: Config, project: string): Promise<string[]> {
  const vars = await readSwarmVars(swarmDir(config, project));
  if (!vars) {
    throw new NotFoundError(
      `project '${project}' has no services deployed to a swarm (${swarmDir(config, project)} has no tfvars)`,
      "deploy it first: iac deploy --target swarm --file repos.yaml",
    );
  }
  return Object.keys(vars.services);
}

export async function swarmHealth(config: Config, project: string): Promise<TaskHealth[]> {
  const names = await deployedSwarmServices(config, project);
  const certs = await readOnlyControlPlaneCerts(config);
  const rows = await Promise.all(
    names.map((n) =>
      taskHealth(config, project, n, certs).catch((err): TaskHealth[] => [
        { name: n, status: "UNREACHABLE", message: errorMessage(err) },
      ]),
    ),
  );
  return rows.flat();
}

/** Docker's multiplexed log stream: 8-byte header (stream, 0, 0, 0, size BE32) per frame. */
export function demux(buf: Buffer): { stream: "stdout" | "stderr"; text: string }[] {
  const out: { stream: "stdout" | "stderr"; text: string }[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const kind = buf[off];
    const size = buf.readUInt32BE(off + 4);
    const body = buf.subarray(off + 8, off + 8 + size).toString("utf8");
    off += 8 + size;
    for (const line of body.split("\n")) {
      if (line === "") continue;
      out.push({ stream: kind === 2 ? "stderr" : "stdout", text: line });
    }
  }
  return out;
}

/**
 * `iac logs SERVICE` on a swarm: the service's logs from every replica (Docker's service logs
 * on the manager), each line prefixed `<service>.<replica>@<node> | `.
 */
export async function swarmLogs(
  config: Config,
  project: string,
  service: string,
  opts: { tail: number; follow: boolean },
  onLine: (l: { ts: string; msg: string; stream: string }) => void,
  signal: AbortSignal,
): Promise<void> {
  const names = await deployedSwarmServices(config, project);
  if (!names.includes(service))
    throw new NotFoundError(
      `no service '${service}' in project '${project}'`,
      `deployed services: ${names.join(", ") || "(none)"}`,
    );
  const docker = dockerClient(config);
  const svc = await inspectService(docker, swarmServiceName(project, service));
  const nodes = await nodesById(docker);
  const tasks = new Map((await tasksOf(docker, svc.ID)).map((t) => [t.ID, t]));
  const prefix = (details: string): string => {
    const attrs = new Map(details.split(",").map((kv) => kv.split("=", 2) as [string, string]));
    const task = tasks.get(attrs.get("com.docker.swarm.task.id") ?? "");
    const node = nodes.get(attrs.get("com.docker.swarm.node.id") ?? "");
    return `${service}.${task?.Slot ?? "?"}@${node?.Description?.Hostname ?? "?"}`;
  };
  const emit = (stream: string, raw: string) => {
    // "<timestamp> <details> <message>" (timestamps + details requested)
    const m = /^(\S+) (\S*) ?(.*)$/.exec(raw);
    if (!m) return;
    onLine({ ts: m[1]!, msg: `${prefix(m[2]!)} | ${m[3]}`, stream });
  };
  const params = {
    stdout: true,
    stderr: true,
    timestamps: true,
    details: true,
    tail: opts.tail === 0 ? "all" : opts.tail,
  };
  if (!opts.follow) {
    const buf = (await docker
      .getService(svc.ID)
      .logs({ ...params, follow: false } as never)) as unknown as Buffer;
    for (const f of demux(buf)) emit(f.stream, f.text);
    return;
  }
  const stream = (await docker
    .getService(svc.ID)
    .logs({ ...params, follow: true } as never)) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  let pending = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      stream.destroy();
      resolve();
    };
    signal.addEventListener("abort", stop, { once: true });
    stream.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let off = 0;
      while (off + 8 <= pending.length) {
        const size = pending.readUInt32BE(off + 4);
        if (off + 8 + size > pending.length) break;
        for (const f of demux(pending.subarray(off, off + 8 + size))) emit(f.stream, f.text);
        off += 8 + size;
      }
      pending = pending.subarray(off);
    });
    stream.on("end", () => resolve());
    stream.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
  });
}
