// Fixtures for the runtime tests: tiny repos (one per entrypoint kind) in tmp dirs, certs
// from src/mesh/pki.ts, and app containers run the way the Terraform module runs them
// (IAC_SIDECAR=none, user 10001, no capabilities, certs mounted read-only).
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { ensureCa, ensureControlPlaneCert, ensureServiceCert } from "../../src/mesh/pki.js";
import type {
  CertPaths,
  Entrypoint,
  EntrypointKind,
  Slug,
  Source,
} from "../../src/kernel/types.js";
import { systemConfig } from "./images.js";
import { dockerClient } from "../../src/platform/docker.js";

export const TEST_LABEL = { "io.iac.test": "1" };
/** The base image `iac` would build on here (environment, .env, bootstrap record, default). */
export const BASE_IMAGE = systemConfig().baseImage;

/** Why the Docker-backed suites cannot run here (no engine, no base image), or undefined. */
export async function dockerSkipReason(): Promise<string | undefined> {
  try {
    const docker = dockerClient({});
    await docker.version();
    await docker.getImage(BASE_IMAGE).inspect();
    return undefined;
  } catch (err) {
    return `Docker engine or base image ${BASE_IMAGE} unavailable (${(err as Error).message}); run make bootstrap`;
  }
}

const PY_MAIN = (marker: string, exitCode: number) => `import signal, sys, time


def main():
    def stop(signum, frame):
        print("got SIGTERM", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(${JSON.stringify(marker)}, flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if ${exitCode}:
        return ${exitCode}
    while True:
        time.sleep(1)
`;

export interface Fixture {
  kind: EntrypointKind;
  marker: string;
  slug: Slug;
  source: Source;
  entrypoint: Entrypoint;
}

async function put(dir: string, rel: string, text: string, mode = 0o644): Promise<void> {
  const file = path.join(dir, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  await chmod(file, mode);
}

/** A tiny repo whose main() prints `hello from <kind>` and then serves until SIGTERM. */
export async function makeFixture(
  root: string,
  kind: EntrypointKind,
  opts: { exitCode?: number } = {},
): Promise<Fixture> {
  const exitCode = opts.exitCode ?? 0;
  const name = `${kind}${exitCode ? `-exit${exitCode}` : ""}`;
  const dir = path.join(root, name);
  const marker = `hello from ${kind}`;
  const body = PY_MAIN(marker, exitCode);
  let argv: string[];
  let installProject = false;
  switch (kind) {
    case "python-file":
      await put(dir, "main.py", `${body}\n\nif __name__ == "__main__":\n    sys.exit(main())\n`);
      await put(dir, ".dockerignore", "*.log\nsecret/\n");
      await put(dir, "debug.log", "must not reach the image\n");
      await put(dir, "secret/token", "must not reach the image\n");
      argv = ["python", "main.py"];
      break;
    case "python-main-function":
      await put(dir, "app.py", body);
      argv = ["python", "-c", "import sys; from app import main; sys.exit(main())"];
      break;
    case "python-module":
      await put(dir, "svc/__init__.py", "");
      await put(dir, "svc/__main__.py", `${body}\n\nsys.exit(main())\n`);
      argv = ["python", "-m", "svc"];
      break;
    case "console-script":
      await put(dir, "src/hello/__init__.py", "");
      await put(dir, "src/hello/cli.py", body);
      await put(
        dir,
        "pyproject.toml",
        [
          "[build-system]",
          'requires = ["setuptools>=61"]',
          'build-backend = "setuptools.build_meta"',
          "",
          "[project]",
          'name = "hello"',
          'version = "0.1.0"',
          "dependencies = []",
          "",
          "[project.scripts]",
          'hello = "hello.cli:main"',
          "",
        ].join("\n"),
      );
      argv = ["hello"];
      installProject = true;
      break;
    case "executable":
      await put(
        dir,
        "run.sh",
        [
          "#!/bin/sh",
          `trap 'echo "got SIGTERM"; exit 0' TERM`,
          `echo "${marker}"`,
          "echo 'to stderr' >&2",
          exitCode ? `exit ${exitCode}` : "while true; do sleep 1 & wait $!; done",
          "",
        ].join("\n"),
        0o755,
      );
      argv = ["./run.sh"];
      break;
  }
  return {
    kind,
    marker,
    slug: { raw: `file:${dir}`, kind: "file", repo: name, location: dir },
    source: { dir, root: dir, commit: `local-test-${name}-v1`, via: "local" },
    entrypoint: { kind, argv, rule: "test-fixture", installProject },
  };
}

export interface RuntimeCerts {
  /** Mounted at /etc/iac/certs in the container (ca.pem, cert.pem, key.pem; uid 10001). */
  serviceDir: (service: string) => Promise<string>;
  controlPlane: CertPaths;
}

export async function makeCerts(secretsDir: string, project: string): Promise<RuntimeCerts> {
  await ensureCa({ secretsDir });
  const cp = await ensureControlPlaneCert({ secretsDir, validityDays: 2 });
  return {
    controlPlane: { caFile: cp.caFile, certFile: cp.certFile, keyFile: cp.keyFile },
    serviceDir: async (service) => {
      const c = await ensureServiceCert({
        secretsDir,
        project,
        network: "iacnet",
        service,
        validityDays: 2,
        ownerUid: 10001,
      });
      return path.dirname(c.certFile);
    },
  };
}

/** Starts an app container the way the Terraform module does with IAC_SIDECAR=none. */
export async function runApp(
  docker: Docker,
  image: string,
  opts: { name: string; service: string; certDir: string; env?: string[] },
): Promise<{ container: Docker.Container; port: number }> {
  const container = await docker.createContainer({
    name: opts.name,
    Image: image,
    Labels: { ...TEST_LABEL },
    User: "10001:10001",
    Env: [
      "IAC_SIDECAR=none",
      `IAC_SERVICE=${opts.service}`,
      "IAC_PROJECT=rt-test",
      "IAC_RESTART_POLICY=never",
      "IAC_STOP_GRACE_S=5",
      ...(opts.env ?? []),
    ],
    ExposedPorts: { "15000/tcp": {} },
    HostConfig: {
      PortBindings: { "15000/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
      Binds: [`${opts.certDir}:/etc/iac/certs:ro`],
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,size=16m" },
    },
  });
  await container.start();
  const info = await container.inspect();
  const port = Number(info.NetworkSettings.Ports["15000/tcp"]?.[0]?.HostPort);
  return { container, port };
}

export async function containerLogs(container: Docker.Container): Promise<string> {
  const buf = (await container.logs({ stdout: true, stderr: true, follow: false })) as Buffer;
  // Demultiplex Docker's 8-byte frame headers.
  const out: string[] = [];
  for (let i = 0; i + 8 <= buf.length;) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len).toString("utf8"));
    i += 8 + len;
  }
  return out.join("");
}

export async function tmpRoot(
  prefix: string,
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
