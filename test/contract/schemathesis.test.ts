// The admin API does what its OpenAPI document says (issue 18): schemathesis (PyPI, in
// .venv-contract) runs every check it has against GET /openapi.json of a real `iac serve` on
// loopback, with a real ES256-signed Supabase user token (the local Supabase stand-in) and the
// real pipeline behind it. What that pipeline could do is kept cheap and contained:
//   - GITHUB_API_URL/GITHUB_SERVER_URL point at the local GitHub stand-in, which has no repos,
//     so a schema-valid gh: deploy fails at its fetch (404) within milliseconds; git+https://
//     hosts are generated names that do not resolve here (no DNS), so those fail fast as well;
//     file: slugs are refused over TCP (403). Nothing reaches terraform or builds an image.
//   - every project name a request carries gets this run's prefix (hooks.py), the default
//     project and network are this run's own, state, secrets and records live in a temp dir;
//     afterwards no container or network of any of those projects may exist.
// Bounded: IAC_CONTRACT_EXAMPLES examples per operation (default 25), one worker; about a
// minute, so it is its own target (`make test-contract`, run by .ci/run after `make test`).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHubServer, type GitHubServer } from "../helpers/github-server.js";
import { startFakeSupabase, type FakeSupabase } from "../helpers/supabase-server.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const SCHEMATHESIS = path.join(ROOT, ".venv-contract", "bin", "schemathesis");
const EXAMPLES = process.env.IAC_CONTRACT_EXAMPLES ?? "25";
const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const prefix = `ctr${randomBytes(3).toString("hex")}`;
const work = mkdtempSync(path.join(tmpdir(), "iac-contract-"));
const projectsLog = path.join(work, "projects.txt");
let sb: FakeSupabase;
let gh: GitHubServer;
let serve: ChildProcess | undefined;
let serveLog = "";
let baseUrl = "";

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: work, // schemathesis keeps a .schemathesis/ cache in its working folder
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, timedOut });
    });
  });
}

async function startServe(env: NodeJS.ProcessEnv): Promise<string> {
  serve = spawn(process.execPath, [path.join(ROOT, "bin/iac.js"), "serve"], {
    cwd: work,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`iac serve did not start:\n${serveLog}`)),
      30_000,
    );
    serve!.stderr!.on("data", (b: Buffer) => {
      serveLog += b.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(serveLog);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    serve!.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`iac serve exited (${code}):\n${serveLog}`));
    });
  });
}

beforeAll(async () => {
  if (!existsSync(SCHEMATHESIS)) {
    throw new Error(
      `${SCHEMATHESIS} is missing: run \`bash scripts/bootstrap.sh python\` (it makes .venv-contract from test/contract/requirements.txt)`,
    );
  }
  sb = await startFakeSupabase();
  gh = await startGitHubServer();
  writeFileSync(projectsLog, "");
  baseUrl = await startServe({
    ...process.env,
    IAC_HTTP_ADDR: "127.0.0.1:0",
    IAC_SOCKET_PATH: path.join(work, "iac.sock"),
    IAC_PROJECT: prefix,
    IAC_NETWORK: `iacnet-${prefix}`,
    IAC_STATE_DIR: path.join(work, "state"),
    IAC_SECRETS_DIR: path.join(work, "secrets"),
    SUPABASE_URL: sb.url,
    SUPABASE_SERVICE_ROLE_KEY: sb.secretKey,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
    GITHUB_TOKEN: "",
    IAC_LOG_LEVEL: "warn",
    IAC_SIDECAR: "none",
  });
}, 60_000);

afterAll(async () => {
  if (serve && serve.exitCode === null) {
    const exited = new Promise((r) => serve!.once("exit", r));
    serve.kill("SIGTERM");
    await exited;
  }
  await gh?.close();
  await sb?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("admin API contract (schemathesis, all checks)", () => {
  it(`every operation conforms to GET /openapi.json (${EXAMPLES} examples each)`, async () => {
    const token = await sb.token({
      appMetadata: { provider: "email", roles: ["iac-admin"] },
      email: "contract@example.test",
      expiresIn: 3600,
    });
    // Asynchronously: the Supabase and GitHub stand-ins answer from this process meanwhile.
    const res = await run(
      SCHEMATHESIS,
      [
        "--config-file",
        path.join(ROOT, "test/contract/schemathesis.toml"),
        "run",
        `${baseUrl}/openapi.json`,
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--header",
        `Authorization: Bearer ${token}`,
        "--seed",
        process.env.IAC_CONTRACT_SEED ?? "18",
        "--no-color",
      ],
      {
        SCHEMATHESIS_HOOKS: "hooks",
        PYTHONPATH: path.join(ROOT, "test/contract"),
        IAC_CONTRACT_PREFIX: prefix,
        IAC_CONTRACT_PROJECTS: projectsLog,
      },
      240_000,
    );
    const out = `${res.stdout}\n${res.stderr}`;
    // The summary lines, so the run's size shows in the test output.
    console.log(
      out
        .split("\n")
        .filter((l) => /passed|failed|Test cases|operations|Seed|API Operations|Examples/i.test(l))
        .slice(-12)
        .join("\n"),
    );
    expect(res.timedOut, out).toBe(false);
    expect(res.status, `${out}\n--- iac serve:\n${serveLog.slice(-4000)}`).toBe(0);
    expect(out).toMatch(/passed/i);
  }, 300_000);

  it("left nothing behind on the Docker engine (containers, networks of every project used)", async () => {
    // Deploys the run started fail within seconds (nothing to fetch); wait for the last one.
    for (let i = 0; i < 60; i++) {
      const list = (await (
        await fetch(`${baseUrl}/deployments`, {
          headers: { authorization: `Bearer ${sb.secretKey}` },
        })
      ).json()) as Array<{ status: string }>;
      if (!list.some((d) => d.status === "running")) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    // A deploy's preflight creates the shared network before it fetches (by design: it lives
    // outside every project's state); a destroy through the API removes it once unused.
    const destroyed = await fetch(`${baseUrl}/destroy`, {
      method: "POST",
      headers: { authorization: `Bearer ${sb.secretKey}`, "content-type": "application/json" },
      body: JSON.stringify({ project: prefix }),
    });
    expect(destroyed.status, await destroyed.clone().text()).toBe(200);
    const used = new Set([
      prefix,
      ...readFileSync(projectsLog, "utf8").split("\n").filter(Boolean),
    ]);
    const containers = await docker.listContainers({
      all: true,
      filters: { label: ["io.iac.project"] },
    });
    const ours = containers.filter((c) => used.has(c.Labels["io.iac.project"] ?? ""));
    expect(ours.map((c) => c.Names[0])).toEqual([]);
    const networks = await docker.listNetworks();
    expect(networks.filter((n) => n.Name.includes(prefix)).map((n) => n.Name)).toEqual([]);
    expect(used.size).toBeGreaterThan(1); // the hook saw generated projects
  });
});
