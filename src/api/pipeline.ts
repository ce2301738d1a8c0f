// What the admin API drives: the operations, as one object. `iac serve` hands the server
// `operations` (static imports: a request can be followed from its route into deploy.ts);
// tests hand it a fake with the same shape.
import type { Config } from "../kernel/config.js";
import type { EventSink } from "../kernel/events.js";
import type { ServiceSpec } from "../kernel/types.js";
import { type DeployReport, deploy } from "../operations/deploy.js";
import { destroy } from "../operations/destroy.js";
import { streamLogs } from "../operations/logs.js";
import {
  type ControlPlaneHealth,
  type ServiceHealth,
  controlPlaneHealth,
  health,
} from "../operations/status.js";

import { overview, type ProjectStatus } from "../operations/overview.js";
import { history, rollback } from "../operations/releases.js";
import type { Release } from "../stack/releases.js";

export type { DeployReport, ServiceReport } from "../operations/deploy.js";
export type { ProjectStatus } from "../operations/overview.js";
export type { Release } from "../stack/releases.js";
export type { ControlPlaneHealth, ServiceHealth } from "../operations/status.js";

export interface LogLineOut {
  ts: string;
  msg: string;
  stream: string;
}

export interface Pipeline {
  deploy(
    config: Config,
    req: { project: string; services: ServiceSpec[]; principal?: string },
    onEvent: EventSink,
    signal?: AbortSignal,
  ): Promise<DeployReport>;
  rollback(
    config: Config,
    req: { project: string; to?: number; principal?: string },
    onEvent: EventSink,
    signal?: AbortSignal,
  ): Promise<DeployReport & { rolled_back_to: number }>;
  history(config: Config, project: string): Promise<Release[]>;
  overview(config: Config): Promise<ProjectStatus[]>;
  destroy(config: Config, project: string, onEvent: EventSink): Promise<{ removed: string[] }>;
  health(config: Config, project: string): Promise<ServiceHealth[]>;
  streamLogs(
    config: Config,
    project: string,
    service: string,
    opts: { tail: number; follow: boolean },
    onLine: (l: LogLineOut) => void,
    signal: AbortSignal,
  ): Promise<void>;
  controlPlaneHealth(config: Config): Promise<ControlPlaneHealth>;
}

/** The real operations behind the API. */
export const operations: Pipeline = {
  deploy,
  rollback,
  history,
  overview,
  destroy,
  health,
  streamLogs,
  controlPlaneHealth,
};
