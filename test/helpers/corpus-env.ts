// What both corpus suites (corpus-run, bundled-repos) stand on: a temp root, the GitHub
// stand-in, a config that fetches from it and builds on the local base image, and the
// control plane's certs; torn down with the containers and image tags a suite made.
import path from "node:path";
import type Docker from "dockerode";
import { type Config, loadConfig } from "../../src/kernel/config.js";
import type { BuiltImage } from "../../src/kernel/types.js";
import { dockerClient } from "../../src/platform/docker.js";
import { type GitHubServer, startGitHubServer } from "./github-server.js";
import { BASE_IMAGE, makeCerts, type RuntimeCerts, tmpRoot } from "./runtime-fixtures.js";

export interface CorpusEnv {
  docker: Docker;
  root: Awaited<ReturnType<typeof tmpRoot>>;
  srv: GitHubServer;
  config: Config;
  certs: RuntimeCerts;
  /** Removes what the suite made (its containers and image tags), then the stand-in and the root. */
  stop(made: { containers: Docker.Container[]; images: BuiltImage[] }): Promise<void>;
}

export async function startCorpusEnv(prefix: string): Promise<CorpusEnv> {
  const docker = dockerClient({});
  const root = await tmpRoot(prefix);
  let srv: GitHubServer | undefined;
  try {
    srv = await startGitHubServer();
    const config = loadConfig(
      {
        ...process.env,
        IAC_BASE_IMAGE: BASE_IMAGE,
        GITHUB_API_URL: srv.apiUrl,
        GITHUB_SERVER_URL: srv.serverUrl,
      },
      {},
      root.dir,
    );
    const certs = await makeCerts(path.join(root.dir, "secrets"), "rt-test");
    const env: CorpusEnv = {
      docker,
      root,
      srv,
      config,
      certs,
      async stop({ containers, images }) {
        for (const c of containers) await c.remove({ force: true }).catch(() => {});
        // noprune keeps the shared layers (base, runner, app venvs) as build cache for the next run.
        for (const img of images)
          await docker
            .getImage(img.tag)
            .remove({ force: true, noprune: true })
            .catch(() => {});
        await env.srv.close();
        await env.root.cleanup();
      },
    };
    return env;
  } catch (err) {
    await srv?.close();
    await root.cleanup();
    throw err;
  }
}
