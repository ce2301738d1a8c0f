// What an image tag is a hash of: the runner's content and the base image's id, next to the
// source commit and the Dockerfile (see buildImage).
import { createHash } from "node:crypto";
import { lstat, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import Docker from "dockerode";
import { APP_OTEL_DIR, RUNNER_DIR, runnerRequirements } from "./wheelhouse.js";

async function hashTree(dir: string, h: ReturnType<typeof createHash>, rel = ""): Promise<void> {
  for (const name of (await readdir(path.join(dir, rel))).sort()) {
    if (name === "__pycache__" || name.endsWith(".pyc")) continue;
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(path.join(dir, r));
    if (st.isDirectory()) await hashTree(dir, h, r);
    else if (st.isFile())
      h.update(r)
        .update("\0")
        .update(await readFile(path.join(dir, r)))
        .update("\0");
  }
}

let runnerHashMemo: Promise<string> | undefined;

/** Content hash of the runner package + its requirements: part of every image tag. */
export function runnerVersion(): Promise<string> {
  runnerHashMemo ??= (async () => {
    const h = createHash("sha256");
    await hashTree(path.join(RUNNER_DIR, "iac_runner"), h);
    h.update(await runnerRequirements());
    return h.digest("hex").slice(0, 16);
  })();
  return runnerHashMemo;
}

export async function baseImageId(docker: Docker, image: string): Promise<string> {
  try {
    return (await docker.getImage(image).inspect()).Id;
  } catch {
    return "absent";
  }
}

let appOtelMemo: Promise<string> | undefined;

/** Content hash of runner/app_otel (installer, requirements, exporters): part of the app tags. */
export function appOtelVersion(): Promise<string> {
  appOtelMemo ??= (async () => {
    const h = createHash("sha256");
    await hashTree(APP_OTEL_DIR, h);
    return h.digest("hex").slice(0, 16);
  })();
  return appOtelMemo;
}
