// Foundation check: the Docker engine builds FROM the local base image (classic builder,
// streamed tar context) and runs python3 in it.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { create as tarCreate } from "tar";
import { describe, expect, it } from "vitest";
import { dockerClient } from "../../src/platform/docker.js";
import { BASE_IMAGE, containerLogs, TEST_LABEL } from "../helpers/runtime-fixtures.js";

const docker = dockerClient({});
const skipReason = await docker
  .getImage(BASE_IMAGE)
  .inspect()
  .then(() => undefined)
  .catch(
    (err: Error) => `Docker or ${BASE_IMAGE} unavailable: ${err.message} (run make bootstrap)`,
  );
if (skipReason) console.warn(`SKIPPING docker smoke test: ${skipReason}`);

describe.skipIf(skipReason !== undefined)("docker smoke", () => {
  it("builds a tiny image FROM the base image and runs python3 --version", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "iac-smoke-"));
    const tag = `iac-test/smoke:${Date.now().toString(36)}`;
    try {
      await writeFile(
        path.join(dir, "Dockerfile"),
        `FROM ${BASE_IMAGE}\nRUN python3 -m venv /opt/v\nCMD ["python3", "--version"]\n`,
      );
      const stream = await docker.buildImage(
        tarCreate({ cwd: dir, portable: true }, ["Dockerfile"]) as unknown as NodeJS.ReadableStream,
        {
          t: tag,
          labels: TEST_LABEL,
          rm: true,
          forcerm: true,
        },
      );
      const out: string[] = [];
      await new Promise<void>((resolve, reject) =>
        docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (e: { stream?: string; error?: string }) => {
            if (e.error) reject(new Error(e.error));
            if (e.stream) out.push(e.stream);
          },
        ),
      );
      expect(out.join("")).toContain(`Successfully tagged ${tag}`);
      const container = await docker.createContainer({ Image: tag, Labels: TEST_LABEL });
      try {
        await container.start();
        const res = (await container.wait()) as { StatusCode: number };
        expect(res.StatusCode).toBe(0);
        expect(await containerLogs(container)).toMatch(/^Python 3\.11\.\d+/);
      } finally {
        await container.remove({ force: true });
      }
    } finally {
      await docker
        .getImage(tag)
        .remove({ force: true, noprune: true })
        .catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });
});
