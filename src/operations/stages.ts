// The stages the deploy orchestrator drives, as one injected interface: `realStages` wires
// the pipeline modules; unit tests hand deploy/plan fakes, so the orchestrator's own rules (a
// failed service keeps its previous version, plan never applies, nothing prepared -> no
// terraform run) are tested without Docker, git or terraform. Every stage gets the config it
// must use in its context (preflight may resolve images to local substitutes).
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { UIDS } from "../kernel/contract.js";
import type { EventSink } from "../kernel/events.js";
import type { BuiltImage, CertPaths, Entrypoint, ServiceSpec, Source } from "../kernel/types.js";
import { detectEntrypoint } from "../detect/entrypoint.js";
import { ENTRYPOINT_LABEL } from "../detect/dockerfile.js";
import type { HealthStatus } from "../gen/controlplane.js";
import { buildImage, imageExists, plannedTag } from "../image/build.js";
import { dockerClient } from "../platform/docker.js";
import { type EnvoyPeer, writeEnvoyConfig } from "../mesh/envoy.js";
import { ensureServiceCert, serviceSpiffeId } from "../mesh/pki.js";
import { recentLogs, waitForServing } from "../runtime/client.js";
import { fetchSource } from "../source/fetch.js";
import * as tf from "../stack/terraform.js";
import { ensureNetwork } from "./network.js";
import { resolveImages } from "./preflight.js";
import type { ContainerState } from "./noop.js";
import { assertAdoptable, controlPlaneCerts, prepareState } from "./project.js";
import { backupState, checkState, describeCheck } from "../stack/state.js";

export interface StageContext {
  config: Config;
  project: string;
  onEvent: EventSink;
  signal?: AbortSignal;
}

export interface Stages {
  /**
   * Checks before anything runs (the shared network exists, no unadopted containers of the
   * project); returns the config with images resolved.
   */
  preflight(config: Config, project: string, onEvent: EventSink): Promise<Config>;
  fetch(spec: ServiceSpec, ctx: StageContext): Promise<Source>;
  detect(source: Source, spec: ServiceSpec): Promise<Entrypoint>;
  build(
    spec: ServiceSpec,
    source: Source,
    entrypoint: Entrypoint,
    ctx: StageContext,
  ): Promise<BuiltImage>;
  /** `plan`: the tag a build would produce (a content hash) and whether it exists; no build. */
  imageTag(
    spec: ServiceSpec,
    source: Source,
    entrypoint: Entrypoint,
    ctx: StageContext,
  ): Promise<{ tag: string; exists: boolean }>;
  /** The service's leaf cert (host paths). */
  certs(spec: ServiceSpec, ctx: StageContext): Promise<Pick<CertPaths, "certFile" | "caFile">>;
  /** The sidecar config (host path), once the stack's members are known. */
  envoyConfig(
    service: { name: string; port?: number },
    peers: EnvoyPeer[],
    ctx: StageContext,
  ): Promise<string>;
  controlPlaneCerts(config: Config): Promise<CertPaths>;
  /** The project's containers, from one Docker list call (the no-op fast path, noop.ts). */
  containers(config: Config, project: string): Promise<ContainerState[]>;
  /** An image's id (sha256:...) on the engine, by tag or name; undefined when absent. */
  imageId(config: Config, ref: string): Promise<string | undefined>;
  terraform: {
    init(run: tf.TerraformRun): Promise<void>;
    plan(
      run: tf.TerraformRun,
      opts?: { varFile?: string; json?: boolean },
    ): Promise<tf.PlanSummary>;
    apply(run: tf.TerraformRun, planFile: string): Promise<void>;
  };
  waitForServing(
    /** `project` pins the server's SPIFFE URI too (the dev CA is shared by all projects). */
    target: { port: number; service: string; project?: string },
    certs: CertPaths,
    deadlineMs: number,
    signal?: AbortSignal,
    onAttempt?: (attempt: number, result: HealthStatus | Error) => void,
  ): Promise<HealthStatus>;
  /** main()'s last `lines` output lines from the runner's buffer. */
  recentLogs(
    target: { port: number; service: string; project?: string },
    certs: CertPaths,
    lines: number,
  ): Promise<string[]>;
}

/** The runner of a deployed service, as the control plane dials it (mTLS, SPIFFE id checked). */
function runtimeTarget(target: { port: number; service: string; project?: string }) {
  return {
    host: "127.0.0.1",
    port: target.port,
    serverName: target.service,
    spiffeId: target.project ? serviceSpiffeId(target.project, target.service) : undefined,
  };
}

/** The repos file's `labels:` for the image; io.iac.entrypoint was used by detection. */
function imageLabels(spec: ServiceSpec): Record<string, string> | undefined {
  const labels = Object.entries(spec.labels ?? {}).filter(([k]) => k !== ENTRYPOINT_LABEL);
  return labels.length > 0 ? Object.fromEntries(labels) : undefined;
}

export const realStages: Stages = {
  async preflight(config, project, onEvent) {
    // The local module reads the shared network as a data source and adopts containers found
    // without state; the swarm module owns its project's overlay network (a bridge network of the
    // same name would block it) and its tasks' containers are Swarm's, not state-less leftovers.
    if (config.target !== "swarm") {
      await ensureNetwork(config, config.network);
      await assertAdoptable(config, project);
    }
    return resolveImages(config, onEvent);
  },
  fetch: (spec, { config, onEvent, signal }) =>
    fetchSource(spec.slug, { config, service: spec.name, onEvent, signal }),
  detect: (source, spec) => detectEntrypoint(source, spec),
  build: (spec, source, entrypoint, { config, onEvent, signal }) =>
    buildImage({
      config,
      service: spec.name,
      slug: spec.slug,
      source,
      entrypoint,
      onEvent,
      signal,
      labels: imageLabels(spec),
      telemetry: spec.telemetry,
    }),
  async imageTag(spec, source, entrypoint, { config }) {
    const docker = dockerClient(config);
    const opts = {
      config,
      service: spec.name,
      slug: spec.slug,
      source,
      entrypoint,
      docker,
      labels: imageLabels(spec),
      telemetry: spec.telemetry,
    };
    const tag = await plannedTag(opts);
    return { tag, exists: await imageExists(docker, tag) };
  },
  imageId: async (config, ref) =>
    (
      await dockerClient(config)
        .getImage(ref)
        .inspect()
        .catch(() => undefined)
    )?.Id,
  certs: (spec, { config, project }) =>
    ensureServiceCert({
      secretsDir: config.secretsDir,
      project,
      network: config.network,
      service: spec.name,
      validityDays: config.certValidityDays,
      // the uid that reads the key: the Envoy image's user, or the app image's runner user
      ownerUid: config.sidecar === "envoy" ? UIDS.envoy : UIDS.app,
    }),
  envoyConfig: (service, peers, { config, project }) =>
    writeEnvoyConfig(config.stateDir, {
      project,
      service: service.name,
      network: config.network,
      port: service.port,
      peers,
    }),
  controlPlaneCerts: (config) => controlPlaneCerts(config),
  async containers(config, project) {
    const list = await dockerClient(config).listContainers({
      all: true,
      filters: { label: [`io.iac.project=${project}`] },
    });
    return list.map((c) => ({
      name: c.Names[0]?.replace(/^\//, "") ?? c.Id,
      id: c.Id,
      imageId: c.ImageID,
      state: c.State,
      labels: c.Labels ?? {},
    }));
  },
  terraform: {
    // A broken state repaired, a network an earlier version owned forgotten (it keeps running),
    // labelled resources outside the state reconciled, each named.
    init: (run) => prepareState(run.config, path.basename(run.dir), run),
    plan: tf.plan,
    // The state is backed up before and after; a broken file left behind is repaired at once.
    async apply(run, planFile) {
      await backupState(run.dir);
      try {
        await tf.apply(run, planFile);
        await backupState(run.dir);
      } finally {
        const note = describeCheck(run.dir, await checkState(run.dir));
        if (note) run.onLine?.(`iac: ${note}`);
      }
    },
  },
  waitForServing: (target, certs, deadlineMs, signal, onAttempt) =>
    waitForServing(runtimeTarget(target), certs, { deadlineMs, signal, onAttempt }),
  recentLogs: (target, certs, lines) => recentLogs(runtimeTarget(target), certs, lines),
};
