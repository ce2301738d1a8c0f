// `iac history`, `iac rollback`, `iac prune`: the releases a project recorded, redeploying the
// images of one of them (no fetch, no build; health-gated like a deploy), and removing the
// images of releases older than the last IAC_KEEP_RELEASES.
import { readdir } from "node:fs/promises";
import type { Config } from "../kernel/config.js";
import { NotFoundError, UsageError, errorMessage } from "../kernel/errors.js";
import { type EventSink, noopSink, stageEvent } from "../kernel/events.js";
import { dockerClient } from "../platform/docker.js";
import {
  type Release,
  type ReleaseService,
  keptImages,
  prunableImages,
  readReleases,
  rollbackTarget,
} from "../stack/releases.js";
import { projectDir } from "../stack/tfvars.js";
import type { Entrypoint, EntrypointKind, ServiceSpec, Slug, Source } from "../kernel/types.js";
import { type DeployReport, deploy } from "./deploy.js";
import { type Stages, realStages } from "./stages.js";
import { cliPrincipal } from "./project.js";

export async function history(config: Config, project: string): Promise<Release[]> {
  return readReleases(projectDir(config, project));
}

interface LocalImage {
  tag: string;
  id: string;
  labels: Record<string, string>;
}

/** The release's image under its tag; re-tags it from the recorded id when only the tag is gone. */
async function ensureImage(config: Config, svc: ReleaseService): Promise<LocalImage> {
  const docker = dockerClient(config);
  const found = await docker
    .getImage(svc.image)
    .inspect()
    .catch(() => undefined);
  if (found && (!svc.image_id || found.Id === svc.image_id))
    return { tag: svc.image, id: found.Id, labels: found.Config?.Labels ?? {} };
  if (!svc.image_id) throw new NotFoundError(`image ${svc.image} is no longer present`);
  try {
    const at = svc.image.lastIndexOf(":");
    await docker
      .getImage(svc.image_id)
      .tag({ repo: svc.image.slice(0, at), tag: svc.image.slice(at + 1) });
    const info = await docker.getImage(svc.image).inspect();
    return { tag: svc.image, id: info.Id, labels: info.Config?.Labels ?? {} };
  } catch (err) {
    throw new NotFoundError(
      `image ${svc.image} (${svc.image_id.slice(0, 19)}) is no longer present: ${errorMessage(err)}`,
      "it was pruned; roll back to a newer release (iac history) or deploy from the repos file",
    );
  }
}

/**
 * The deploy pipeline's stages for a rollback: no fetch, no build. "fetch" puts the release's
 * image back (by tag, or by id), "detect" reads the entrypoint from its labels, "build" reuses it.
 */
function rollbackStages(config: Config, target: Release): Stages {
  const bySvc = new Map(target.services.map((s) => [s.name, s]));
  const images = new Map<string, LocalImage>();
  return {
    ...realStages,
    async fetch(spec): Promise<Source> {
      const svc = bySvc.get(spec.name)!;
      images.set(spec.name, await ensureImage(config, svc));
      return { dir: "", root: "", commit: svc.commit, via: "cache" };
    },
    async detect(_source, spec): Promise<Entrypoint> {
      const labels = images.get(spec.name)?.labels ?? {};
      let argv: string[] = [];
      try {
        argv = JSON.parse(labels["io.iac.entrypoint"] ?? "[]") as string[];
      } catch {
        argv = [];
      }
      return {
        kind: (labels["io.iac.entrypoint-kind"] ?? "executable") as EntrypointKind,
        argv,
        rule: `release ${target.number}`,
        installProject: false,
      };
    },
    async build(spec) {
      const img = images.get(spec.name)!;
      return { tag: img.tag, id: img.id, built: false };
    },
  };
}

/** Redeploys release `to` (default: the one before the latest); records a new release. */
export async function rollback(
  config: Config,
  req: { project: string; to?: number; principal?: string },
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
): Promise<DeployReport & { rolled_back_to: number }> {
  const releases = await history(config, req.project);
  const target = rollbackTarget(releases, req.to);
  const p = req.project === "iac" ? "" : ` --project ${req.project}`;
  if (!target) {
    throw new UsageError(
      req.to === undefined
        ? `project '${req.project}' has ${releases.length} release(s): nothing to roll back to`
        : `project '${req.project}' has no release ${req.to}`,
      `list them: iac history${p}`,
    );
  }
  onEvent(
    stageEvent("plan", undefined, `rolling back to release ${target.number} (${target.time})`),
  );
  // Only name, slug (as written), env and port of a spec are used once fetch/build are replaced.
  const services: ServiceSpec[] = target.services.map((s) => ({
    name: s.name,
    slug: { raw: s.slug } as unknown as Slug,
    env: s.env,
    ...(s.port ? { port: s.port } : {}),
  }));
  const report = await deploy(
    config,
    {
      project: req.project,
      services,
      principal: req.principal ?? cliPrincipal(),
      release: { kind: "rollback", rollbackOf: target.number },
    },
    onEvent,
    signal,
    rollbackStages(config, target),
  );
  return { ...report, rolled_back_to: target.number };
}

export interface PruneResult {
  project: string;
  kept: number;
  removed: string[];
  /** Images that could not be removed (still used by a container, ...), with the reason. */
  skipped: { image: string; reason: string }[];
}

/** Images the newest releases of every project in the state directory still need. */
async function keptByAnyProject(config: Config): Promise<Set<string>> {
  const kept = new Set<string>();
  let projects: string[] = [];
  try {
    projects = await readdir(config.stateDir);
  } catch {
    return kept;
  }
  for (const p of projects) {
    const releases = await readReleases(projectDir(config, p)).catch(() => []);
    for (const id of keptImages(releases, config.keepReleases)) kept.add(id);
  }
  return kept;
}

/**
 * Removes the images of releases older than the newest `config.keepReleases` (never one a
 * kept release of any project names; Docker refuses images a container uses).
 */
export async function prune(config: Config, project: string): Promise<PruneResult> {
  const releases = await history(config, project);
  const docker = dockerClient(config);
  const result: PruneResult = { project, kept: config.keepReleases, removed: [], skipped: [] };
  const keptElsewhere = await keptByAnyProject(config);
  for (const img of prunableImages(releases, config.keepReleases)) {
    if (keptElsewhere.has(img.image) || (img.image_id && keptElsewhere.has(img.image_id))) {
      result.skipped.push({
        image: img.image,
        reason: "a kept release of another project uses it",
      });
      continue;
    }
    try {
      await docker.getImage(img.image).remove();
      result.removed.push(img.image);
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) continue; // already gone
      result.skipped.push({ image: img.image, reason: errorMessage(err).split("\n")[0]! });
    }
  }
  return result;
}
