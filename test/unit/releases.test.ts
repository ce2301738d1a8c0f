import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type Release,
  appendRelease,
  keptImages,
  prunableImages,
  readReleases,
  releasesPath,
  rollbackTarget,
} from "../../src/stack/releases.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const svc = (image: string, id?: string) => ({
  name: "api",
  slug: "gh:acme/api",
  commit: "c".repeat(40),
  image,
  image_id: id,
  status: "SERVING",
  env: {},
});
const rel = (number: number, image: string, id?: string): Release => ({
  number,
  time: "2026-01-01T00:00:00.000Z",
  principal: "cli:me",
  kind: "deploy",
  network: "iacnet",
  services: [svc(image, id)],
});

describe("releases (append-only JSON lines)", () => {
  it("numbers releases 1, 2, ... and reads them back in order", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-rel-"));
    dirs.push(dir);
    expect(await readReleases(dir)).toEqual([]);
    const base = { principal: "cli:me", kind: "deploy" as const, network: "iacnet" };
    const a = await appendRelease(dir, { ...base, services: [svc("iac/api:1")] });
    const b = await appendRelease(dir, { ...base, services: [svc("iac/api:2")] });
    expect([a.number, b.number]).toEqual([1, 2]);
    expect((await readReleases(dir)).map((r) => r.services[0]!.image)).toEqual([
      "iac/api:1",
      "iac/api:2",
    ]);
  });

  it("skips a torn last line (crash mid-write) and keeps numbering after the last good one", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-rel-"));
    dirs.push(dir);
    await appendRelease(dir, { principal: "p", kind: "deploy", network: "n", services: [] });
    await appendFile(releasesPath(dir), '{"number": 2, "tim');
    expect((await readReleases(dir)).map((r) => r.number)).toEqual([1]);
  });

  it("rollback target: the previous release by default, or the one asked for", () => {
    const list = [rel(1, "a"), rel(2, "b"), rel(3, "c")];
    expect(rollbackTarget(list)?.number).toBe(2);
    expect(rollbackTarget(list, 1)?.number).toBe(1);
    expect(rollbackTarget(list, 9)).toBeUndefined();
    expect(rollbackTarget([rel(1, "a")])).toBeUndefined();
  });

  it("prune keeps the images of the last K releases, even when an older one used them too", () => {
    const list = [
      rel(1, "iac/api:a", "sha:a"),
      rel(2, "iac/api:b", "sha:b"),
      rel(3, "iac/api:a", "sha:a"),
    ];
    expect([...keptImages(list, 1)]).toEqual(["iac/api:a", "sha:a"]);
    expect(prunableImages(list, 1)).toEqual([{ image: "iac/api:b", image_id: "sha:b" }]);
    expect(prunableImages(list, 2)).toEqual([]);
    expect(prunableImages(list, 5)).toEqual([]);
  });
});
