// Releases: one JSON line per deploy that applied, appended to <stateDir>/<project>/releases.jsonl
// (no database). Written with O_APPEND under the project lock; a torn last line (crash while
// writing) is skipped when read.
import { appendFile, readFile } from "node:fs/promises";
import path from "node:path";

export interface ReleaseService {
  name: string;
  slug: string;
  commit: string;
  /** The image tag Terraform ran (iac/<service>:<hash>) and the image id behind it. */
  image: string;
  image_id?: string;
  status: string;
  /** App environment from the repos file, so a rollback runs the same configuration. */
  env: Record<string, string>;
  /** The app's declared port (`port:` in the repos file; 0 = none). */
  port?: number;
}

export interface Release {
  number: number;
  time: string;
  /** Who deployed: `cli:<user>`, or the API principal (`user:<email>`, `service_role`, `socket`). */
  principal: string;
  kind: "deploy" | "rollback";
  /** For a rollback: the release whose images it redeployed. */
  rollback_of?: number;
  network: string;
  services: ReleaseService[];
}

export function releasesPath(dir: string): string {
  return path.join(dir, "releases.jsonl");
}

export async function readReleases(dir: string): Promise<Release[]> {
  let text: string;
  try {
    text = await readFile(releasesPath(dir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: Release[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as Release);
    } catch {
      /* a torn line from a crash mid-write: skipped */
    }
  }
  return out;
}

/** Appends the next release (number = last + 1) and returns it. Call under the project lock. */
export async function appendRelease(
  dir: string,
  release: Omit<Release, "number" | "time">,
  now: Date = new Date(),
): Promise<Release> {
  const existing = await readReleases(dir);
  const number = (existing.at(-1)?.number ?? 0) + 1;
  const record: Release = { number, time: now.toISOString(), ...release };
  await appendFile(releasesPath(dir), JSON.stringify(record) + "\n", { mode: 0o600 });
  return record;
}

/** Release `to`, or the one before the latest when `to` is omitted. */
export function rollbackTarget(releases: Release[], to?: number): Release | undefined {
  if (to !== undefined) return releases.find((r) => r.number === to);
  return releases.at(-2);
}

/** Image tags (and ids) of the newest `keep` releases: what `iac prune` must not remove. */
export function keptImages(releases: Release[], keep: number): Set<string> {
  const kept = new Set<string>();
  for (const r of releases.slice(-keep))
    for (const s of r.services) {
      kept.add(s.image);
      if (s.image_id) kept.add(s.image_id);
    }
  return kept;
}

/** Images recorded by older releases and not by any kept one. */
export function prunableImages(
  releases: Release[],
  keep: number,
): { image: string; image_id?: string }[] {
  const kept = keptImages(releases, keep);
  const seen = new Set<string>();
  const out: { image: string; image_id?: string }[] = [];
  for (const r of releases.slice(0, Math.max(0, releases.length - keep)))
    for (const s of r.services) {
      if (kept.has(s.image) || (s.image_id && kept.has(s.image_id)) || seen.has(s.image)) continue;
      seen.add(s.image);
      out.push({ image: s.image, image_id: s.image_id });
    }
  return out;
}
