// Deploy benchmark: cold deploy of 2 services, warm no-op redeploy (containers recreated must
// be 0), destroy; side by side with a raw `terraform plan` + `apply` no-op on the same state.
// Run: npx tsx bench/deploy.ts   (needs `make bootstrap`; settings as for `iac`: Envoy sidecars
// unless IAC_SIDECAR says otherwise, the images bootstrap recorded)
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadSystemConfig } from "../src/kernel/config.js";
import { deploy } from "../src/operations/deploy.js";
import { destroy } from "../src/operations/destroy.js";
import { dockerClient } from "../src/platform/docker.js";
import { loadReposFile } from "../src/intake/repofile.js";
import { projectDir } from "../src/stack/tfvars.js";
import { makeGitRepo } from "../test/helpers/git-fixtures.js";

const run = promisify(execFile);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, (performance.now() - t0) / 1000];
}

const work = await mkdtemp(path.join(tmpdir(), "iac-bench-"));
const project = `bench${randomBytes(3).toString("hex")}`;
const nonce = randomBytes(4).toString("hex"); // fresh content -> images really build (cold)
const config = loadSystemConfig({
  IAC_PROJECT: project,
  IAC_NETWORK: `iacnet-${project}`,
  IAC_STATE_DIR: path.join(work, ".iac"),
  IAC_SECRETS_DIR: path.join(work, "secrets"),
});
try {
  const a = await makeGitRepo({ "main.py": `def main():\n    print("alpha ${nonce}")\n` });
  const b = await makeGitRepo({
    "__main__.py": `import time\nprint("beta ${nonce}")\ntime.sleep(3600)\n`,
  });
  const { writeFile } = await import("node:fs/promises");
  const reposFile = path.join(work, "repos.yaml");
  await writeFile(reposFile, `- file:${a.dir}\n- file:${b.dir}\n`);
  const services = await loadReposFile(reposFile);
  const req = { project, services };

  const [cold, coldS] = await timed(() => deploy(config, req));
  const [warm, warmS] = await timed(() => deploy(config, req));
  const dir = projectDir(config, project);
  const tfEnv = {
    ...process.env,
    TF_DATA_DIR: path.join(dir, ".terraform"),
    TF_IN_AUTOMATION: "1",
    ...(config.terraform.cliConfig ? { TF_CLI_CONFIG_FILE: config.terraform.cliConfig } : {}),
  };
  const [, rawS] = await timed(async () => {
    await run(config.terraform.bin, ["plan", "-input=false", "-no-color", "-out=raw.tfplan"], {
      cwd: dir,
      env: tfEnv,
    });
    await run(config.terraform.bin, ["apply", "-input=false", "-no-color", "raw.tfplan"], {
      cwd: dir,
      env: tfEnv,
    });
  });
  const [, destroyS] = await timed(() => destroy(config, project));
  const docker = dockerClient(config);
  for (const s of cold.services) {
    if (s.image)
      await docker
        .getImage(s.image)
        .remove({ noprune: true })
        .catch(() => undefined);
  }

  const serving = (r: typeof cold) => r.services.filter((s) => s.status === "SERVING").length;
  console.log(`services:                       2 (sidecar=${config.sidecar})`);
  console.log(
    `cold deploy (build+apply+health): ${coldS.toFixed(2)} s  (${serving(cold)}/2 SERVING)`,
  );
  console.log(
    `warm no-op redeploy:            ${warmS.toFixed(2)} s  (${serving(warm)}/2 SERVING, applied=${warm.applied})`,
  );
  console.log(`containers recreated on redeploy: ${warm.containersRecreated?.length ?? 0}`);
  console.log(`raw terraform plan+apply no-op: ${rawS.toFixed(2)} s`);
  console.log(`ratio warm redeploy / raw no-op: ${(warmS / rawS).toFixed(2)}x`);
  console.log(`ratio cold deploy / raw no-op:   ${(coldS / rawS).toFixed(2)}x`);
  console.log(`destroy:                        ${destroyS.toFixed(2)} s`);
} finally {
  await destroy(config, project).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}
