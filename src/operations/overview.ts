// `iac status` / GET /status: every project on this engine (found by its labels and by the state
// directory), its services with their health, the current release and its age.
import { readdir } from "node:fs/promises";
import type { Config } from "../kernel/config.js";
import { errorMessage } from "../kernel/errors.js";
import { dockerClient } from "../platform/docker.js";
import { readReleases } from "../stack/releases.js";
import { hasState } from "../stack/terraform.js";
import { projectDir, readStackVars } from "../stack/tfvars.js";
import { health } from "./status.js";

export interface ProjectStatus {
  project: string;
  /** deployed: state and containers; no-state: containers only (`iac adopt`); stopped: state only. */
  state: "deployed" | "no-state" | "stopped";
  network?: string;
  release?: { number: number; time: string; principal: string; kind: string };
  /** When the current release was made (else when its oldest container was created). */
  since?: string;
  age_seconds?: number;
  services: {
    name: string;
    status: string;
    containers: { name: string; state: string }[];
    commit?: string;
    image?: string;
    message?: string;
  }[];
}

interface Labelled {
  name: string;
  service: string;
  state: string;
  created: number;
  commit?: string;
  image: string;
}

async function labelledContainers(config: Config): Promise<Map<string, Labelled[]>> {
  const byProject = new Map<string, Labelled[]>();
  const list = await dockerClient(config).listContainers({
    all: true,
    filters: { label: ["io.iac.project"] },
  });
  for (const c of list) {
    const project = c.Labels["io.iac.project"]!;
    const entry: Labelled = {
      name: c.Names[0]?.replace(/^\//, "") ?? c.Id,
      service: c.Labels["io.iac.service"] ?? "?",
      state: c.State,
      created: c.Created,
      commit: c.Labels["io.iac.commit"],
      image: c.Image,
    };
    byProject.set(project, [...(byProject.get(project) ?? []), entry]);
  }
  return byProject;
}

async function projectsWithState(config: Config): Promise<string[]> {
  try {
    const names = await readdir(config.stateDir);
    const out: string[] = [];
    for (const n of names) if (await readStackVars(projectDir(config, n))) out.push(n);
    return out;
  } catch {
    return [];
  }
}

export async function overview(config: Config, now: Date = new Date()): Promise<ProjectStatus[]> {
  const containers = await labelledContainers(config);
  const names = new Set([...containers.keys(), ...(await projectsWithState(config))]);
  const out = await Promise.all(
    [...names].sort().map(async (project): Promise<ProjectStatus> => {
      const dir = projectDir(config, project);
      const vars = await readStackVars(dir);
      const mine = containers.get(project) ?? [];
      const latest = (await readReleases(dir)).at(-1);
      const known = Boolean(vars && hasState(dir));
      const state = !known ? "no-state" : mine.length ? "deployed" : "stopped";
      const healthByName = new Map<string, { status: string; message?: string }>();
      if (known && mine.length) {
        try {
          for (const h of await health(config, project)) healthByName.set(h.name, h);
        } catch (err) {
          for (const n of Object.keys(vars!.services))
            healthByName.set(n, { status: "UNKNOWN", message: errorMessage(err) });
        }
      }
      const serviceNames = new Set([
        ...Object.keys(vars?.services ?? {}),
        ...mine.map((c) => c.service),
      ]);
      const oldest = mine.length ? Math.min(...mine.map((c) => c.created)) * 1000 : undefined;
      const since = latest?.time ?? (oldest ? new Date(oldest).toISOString() : undefined);
      return {
        project,
        state,
        network: vars?.network_name,
        release: latest && {
          number: latest.number,
          time: latest.time,
          principal: latest.principal,
          kind: latest.kind,
        },
        since,
        age_seconds: since
          ? Math.max(0, Math.round((now.getTime() - Date.parse(since)) / 1000))
          : undefined,
        services: [...serviceNames].sort().map((name) => {
          const cs = mine.filter((c) => c.service === name);
          const h = healthByName.get(name);
          const running = cs.length > 0 && cs.every((c) => c.state === "running");
          return {
            name,
            status: h?.status ?? (cs.length === 0 ? "ABSENT" : running ? "RUNNING" : "STOPPED"),
            containers: cs.map((c) => ({ name: c.name, state: c.state })),
            commit: vars?.services[name]?.commit ?? cs[0]?.commit,
            image: vars?.services[name]?.image ?? cs.find((c) => !c.name.endsWith("-envoy"))?.image,
            message: h?.message,
          };
        }),
      };
    }),
  );
  return out;
}
