// End-to-end projects for the CLI tests. startFixtures(): fixture git repos served by the local
// GitHub stand-in (close() also removes the images built from them). startE2eProject(): a
// unique project + network + temp working dir (state, secrets), `iac` run as a child process,
// and a cleanup that removes every container and network of the project whatever happened.
// Several projects of one file share the fixtures (and so the app images). Used by
// e2e.test.ts (Envoy, and IAC_SIDECAR=none); new e2e suites (mesh, security) start here too.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { startGithubServer, type GithubServer } from "./github-server.js";
import { type FixtureFiles, type FixtureRepo, makeGitRepo } from "./git-fixtures.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

/** The hello-main fixture: prints to stdout and stderr, returns 0. */
export const HELLO_MAIN: FixtureFiles = {
  "main.py": [
    "import sys",
    "",
    "def main():",
    '    print("hello from main()", flush=True)',
    '    print("to stderr too", file=sys.stderr, flush=True)',
    "    return 0",
    "",
  ].join("\n"),
  "README.md": "# hello-main\n",
};

/** Fixture repos served by the GitHub stand-in; shared by the projects of one test file. */
export interface E2eFixtures {
  github: GithubServer;
  /** Removes the images built from these repos, the repos and the server. */
  close(): Promise<void>;
}

/** Starts the GitHub stand-in with `repos` (owner/name -> files). Call close() in afterAll. */
export async function startFixtures(repos: Record<string, FixtureFiles>): Promise<E2eFixtures> {
  const dirs: Record<string, string> = {};
  const fixtures: FixtureRepo[] = [];
  for (const [slug, files] of Object.entries(repos)) {
    const repo = await makeGitRepo(files);
    fixtures.push(repo);
    dirs[slug] = repo.dir;
  }
  const github = await startGithubServer({ repos: dirs });
  return {
    github,
    async close() {
      // No image left behind: the ones built from these repos (the tag and the app-specific
      // layers under it all carry the slug label; the shared runner layers do not).
      const slugs = Object.keys(repos).flatMap((r) => [`gh:${r}`, `gh:${r}#main`]);
      for (const slug of slugs) {
        const filters = { label: [`io.iac.slug=${slug}`] };
        for (let pass = 0; pass < 20; pass++) {
          const images = await docker.listImages({ all: true, filters });
          if (images.length === 0) break;
          for (const img of images) {
            await docker
              .getImage(img.Id)
              .remove({ force: true, noprune: true })
              .catch(() => undefined); // a parent goes once its child is gone: next pass
          }
        }
        const left = await docker.listImages({ all: true, filters });
        if (left.length)
          console.warn(`[e2e] could not remove ${left.length} images labelled ${filters.label[0]}`);
      }
      await github.close();
      for (const repo of fixtures) await repo.cleanup();
    },
  };
}

export interface E2eProject {
  project: string;
  network: string;
  /** The working directory `iac` runs in (state and secrets live under it). */
  work: string;
  env: NodeJS.ProcessEnv;
  /** Writes a repos file into the work dir and returns its path. */
  reposFile(name: string, text: string): Promise<string>;
  /** `node bin/iac.js ...` in the work dir with the project's environment. */
  iac(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** The project's containers (running, or all). */
  containers(all?: boolean): Promise<Docker.ContainerInfo[]>;
  /** The control plane's client cert files (for direct gRPC calls). */
  controlPlaneCerts(): { caFile: string; certFile: string; keyFile: string };
  /**
   * Runs python3 code in a throwaway container sharing `container`'s network namespace (so
   * 127.0.0.1 is the service's loopback: the app's 50051, Envoy's 9901). Returns stdout.
   */
  inNetns(container: string, image: string, code: string): Promise<string>;
  /** Removes every container and network of the project, and its working dir. */
  cleanup(): Promise<void>;
}

/**
 * A unique project + network + working dir against `fixtures`. `env` adds or overrides
 * variables (IAC_SIDECAR, ...). Call cleanup() in afterAll (before fixtures.close()).
 */
export async function startE2eProject(
  fixtures: E2eFixtures,
  opts: { prefix: string; env?: Record<string, string> },
): Promise<E2eProject> {
  const project = `${opts.prefix}${randomBytes(3).toString("hex")}`;
  const network = `iacnet-${project}`;
  const work = await mkdtemp(path.join(tmpdir(), `iac-${opts.prefix}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GITHUB_API_URL: fixtures.github.apiUrl,
    GITHUB_SERVER_URL: fixtures.github.serverUrl,
    IAC_PROJECT: project,
    IAC_NETWORK: network,
    IAC_STATE_DIR: path.join(work, ".iac"),
    IAC_SECRETS_DIR: path.join(work, "secrets"),
    IAC_HEALTH_TIMEOUT_S: "60",
    ...opts.env,
  };
  const label = `io.iac.project=${project}`;
  const testLabel = `io.iac.e2e=${project}`;

  return {
    project,
    network,
    work,
    env,
    async reposFile(name, text) {
      const file = path.join(work, name);
      await writeFile(file, text);
      return file;
    },
    iac: (...args) =>
      run("node", [path.join(ROOT, "bin/iac.js"), ...args], {
        cwd: work,
        env,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      }),
    containers: (all = false) => docker.listContainers({ all, filters: { label: [label] } }),
    controlPlaneCerts() {
      const cp = path.join(work, "secrets", "control-plane");
      return {
        caFile: path.join(cp, "ca.pem"),
        certFile: path.join(cp, "cert.pem"),
        keyFile: path.join(cp, "key.pem"),
      };
    },
    async inNetns(container, image, code) {
      const { stdout } = await run(
        "docker",
        [
          ...["run", "--rm", "--network", `container:${container}`],
          ...["--label", testLabel, "--user", "65534:65534", "--cap-drop", "ALL"],
          ...[image, "python3", "-c", code],
        ],
        { timeout: 60_000 },
      );
      return stdout;
    },
    async cleanup() {
      // Whatever happened, leave nothing of this project behind.
      for (const filter of [label, testLabel]) {
        for (const c of await docker.listContainers({ all: true, filters: { label: [filter] } })) {
          await docker.getContainer(c.Id).remove({ force: true });
        }
      }
      for (const n of await docker.listNetworks({ filters: { label: [label] } })) {
        await docker.getNetwork(n.Id).remove();
      }
      // The project's network is shared (created outside its state): remove it by its name.
      await docker
        .getNetwork(network)
        .remove()
        .catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    },
  };
}
