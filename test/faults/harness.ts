// A project for fault injection: local `file:` repos, a unique project and network, the state
// and secrets in a temp dir, `iac` run as a real child process (so real signals reach it).
// Cleanup removes only what carries this project's label (and the images its repos built).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Docker from "dockerode";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

/** main() that prints and then serves until stopped. */
export const SERVE = `import signal, sys, time


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("up", flush=True)
    while True:
        time.sleep(1)
`;

/** main() that lives 0.3 s, then exits 3: a crash loop under the runner's on-failure policy. */
export const CRASH = `import time


def main():
    print("starting", flush=True)
    time.sleep(0.3)
    return 3
`;

export interface IacResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningIac {
  child: ChildProcess;
  /** Resolves once a stderr line matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  done: Promise<IacResult>;
}

export class FaultProject {
  readonly project = `flt${randomBytes(3).toString("hex")}`;
  readonly network = `iacnet-${this.project}`;
  work = "";
  env: NodeJS.ProcessEnv = {};
  readonly slugs: string[] = [];

  get stateDir(): string {
    return path.join(this.work, ".iac", this.project);
  }

  /** apps: service name -> main.py body. */
  async setup(apps: Record<string, string>, extraEnv: Record<string, string> = {}): Promise<void> {
    this.work = await mkdtemp(path.join(tmpdir(), "iac-faults-"));
    const lines = ["services:"];
    for (const [name, body] of Object.entries(apps)) {
      // Same content every run: the image is built once and reused while it exists.
      await mkdir(path.join(this.work, `fault-${name}`));
      await writeFile(path.join(this.work, `fault-${name}`, "main.py"), body);
      lines.push(`  - slug: file:fault-${name}`, `    name: ${name}`);
      this.slugs.push(`file:fault-${name}`);
    }
    await writeFile(path.join(this.work, "repos.yaml"), lines.join("\n") + "\n");
    this.env = {
      ...process.env,
      IAC_PROJECT: this.project,
      IAC_NETWORK: this.network,
      IAC_SIDECAR: "none",
      IAC_STATE_DIR: path.join(this.work, ".iac"),
      IAC_SECRETS_DIR: path.join(this.work, "secrets"),
      IAC_BASE_IMAGE: process.env.IAC_BASE_IMAGE ?? "iac-local/python:3.11-slim",
      IAC_HEALTH_TIMEOUT_S: "120",
      IAC_HEALTH_STABLE_S: "1",
      ...extraEnv,
    };
  }

  spawn(args: string[], env: Record<string, string> = {}): RunningIac {
    const child = spawn("node", [path.join(ROOT, "bin/iac.js"), ...args], {
      cwd: this.work,
      env: { ...this.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      for (const w of [...waiters]) {
        const m = stderr.split("\n").find((l) => w.re.test(l));
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    const done = new Promise<IacResult>((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
    return {
      child,
      done,
      waitFor: (re, timeoutMs = 120_000) =>
        new Promise<string>((resolve, reject) => {
          const m = stderr.split("\n").find((l) => re.test(l));
          if (m) return resolve(m);
          const timer = setTimeout(
            () => reject(new Error(`no stderr line matched ${re} in ${timeoutMs} ms:\n${stderr}`)),
            timeoutMs,
          );
          waiters.push({
            re,
            resolve: (l) => {
              clearTimeout(timer);
              resolve(l);
            },
          });
          void done.then(() => {
            clearTimeout(timer);
            reject(new Error(`iac exited before a stderr line matched ${re}:\n${stderr}`));
          });
        }),
    };
  }

  iac(args: string[], env: Record<string, string> = {}): Promise<IacResult> {
    return this.spawn(args, env).done;
  }

  deploy(env: Record<string, string> = {}): Promise<IacResult> {
    return this.iac(["deploy", "--file", "repos.yaml", "--output", "json"], env);
  }

  /** Containers carrying the project's label: name -> state. */
  async containers(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const list = await docker.listContainers({
      all: true,
      filters: { label: [`io.iac.project=${this.project}`] },
    });
    for (const c of list) out[c.Names[0]!.replace(/^\//, "")] = c.State;
    return out;
  }

  /** Ids of the containers carrying the project's label: id -> name. */
  async containerIds(): Promise<Record<string, string>> {
    const list = await docker.listContainers({
      all: true,
      filters: { label: [`io.iac.project=${this.project}`] },
    });
    return Object.fromEntries(list.map((c) => [c.Id, c.Names[0]!.replace(/^\//, "")]));
  }

  async networks(): Promise<string[]> {
    const list = await docker.listNetworks({ filters: { name: [this.network] } });
    return list.filter((n) => n.Name === this.network).map((n) => n.Name);
  }

  async cleanup(): Promise<void> {
    const label = `io.iac.project=${this.project}`;
    for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    for (const n of await docker.listNetworks({ filters: { name: [this.network] } })) {
      if (n.Name === this.network)
        await docker
          .getNetwork(n.Id)
          .remove()
          .catch(() => undefined);
    }
    if (this.work) await rm(this.work, { recursive: true, force: true });
  }
}

/** Removes the app images the fault repos built (the shared runner layers stay). */
export async function removeFaultImages(slugs: string[]): Promise<void> {
  for (const slug of slugs) {
    const filters = { label: [`io.iac.slug=${slug}`] };
    for (let pass = 0; pass < 10; pass++) {
      const images = await docker.listImages({ all: true, filters });
      if (images.length === 0) break;
      for (const img of images) {
        await docker
          .getImage(img.Id)
          .remove({ force: true, noprune: true })
          .catch(() => undefined);
      }
    }
  }
}

/** Direct children of a pid (from /proc), e.g. the terraform that iac started. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function parseReport(stdout: string): {
  services: { name: string; status: string; port?: number; error?: string }[];
} {
  return JSON.parse(stdout) as ReturnType<typeof parseReport>;
}
