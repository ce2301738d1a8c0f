// Issue 12 item 4: `build: dockerfile`. A fixture repository's own Dockerfile (FROM
// python:3.11-slim, which cannot be pulled here and maps onto the local base substitute) is
// built as it is, the runner is layered on top, and the container runs like every app (user
// 10001, read-only root, mTLS health over gRPC, logs). A FROM that is neither present nor
// pullable fails with the image and the Dockerfile line named.
import path from "node:path";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import { BuildError, buildImage } from "../../src/image/build.js";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import type { BuiltImage, Source } from "../../src/kernel/types.js";
import { dockerClient } from "../../src/platform/docker.js";
import { runtimeClient, streamLogs, waitForServing } from "../../src/runtime/client.js";
import { HealthStatus_Status } from "../../src/gen/controlplane.js";
import { writeFixtureFiles } from "../helpers/git-fixtures.js";
import {
  BASE_IMAGE,
  containerLogs,
  makeCerts,
  runApp,
  TEST_LABEL,
  tmpRoot,
  type RuntimeCerts,
  dockerSkipReason,
} from "../helpers/runtime-fixtures.js";

const APP_PY = `import os, signal, sys, time

def stop(signum, frame):
    print("got SIGTERM", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
print(f"greeting={os.environ.get('GREETING')}", flush=True)
print(f"built={open('/srv/built.txt').read()}", flush=True)
print(f"cwd={os.getcwd()} uid={os.getuid()}", flush=True)
print(f"secret present={os.path.exists('/srv/secret.txt')}", flush=True)
while True:
    time.sleep(1)
`;

const DOCKERFILE = `# a repository's own Dockerfile
ARG PY=3.11
FROM python:\${PY}-slim
ENV GREETING=hello-from-own-dockerfile
WORKDIR /srv
COPY . ./
RUN python3 -c "open('/srv/built.txt', 'w').write('by RUN in the build')"
LABEL io.iac.entrypoint="python3 app.py" com.example.kept="yes"
CMD ["python3", "-c", "raise SystemExit('the CMD must not run: the label wins')"]
`;

const skipReason = await dockerSkipReason();
if (skipReason) console.warn(`SKIPPING own-Dockerfile integration tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)("build: dockerfile (the repo's own Dockerfile)", () => {
  let docker: Docker;
  let config: Config;
  let root: Awaited<ReturnType<typeof tmpRoot>>;
  let certs: RuntimeCerts;
  const images: BuiltImage[] = [];
  const containers: Docker.Container[] = [];
  const runId = Date.now().toString(36);

  async function repo(name: string, files: Record<string, string>): Promise<Source> {
    const dir = path.join(root.dir, "repos", name);
    await writeFixtureFiles(dir, files);
    return { dir, root: dir, commit: `local-test-${name}-${runId}`, via: "local" };
  }

  beforeAll(async () => {
    docker = dockerClient({});
    root = await tmpRoot("iac-owndf-");
    config = loadConfig({ ...process.env, IAC_BASE_IMAGE: BASE_IMAGE }, {}, root.dir);
    certs = await makeCerts(path.join(root.dir, "secrets"), "rt-test");
  });

  afterAll(async () => {
    for (const c of containers) await c.remove({ force: true }).catch(() => {});
    // Removing the tag also removes the untagged image built from the repo's Dockerfile.
    for (const img of images)
      await docker
        .getImage(img.tag)
        .remove({ force: true })
        .catch(() => {});
    await root?.cleanup();
  });

  it("builds it as it is, layers the runner on top, and serves over mTLS", async () => {
    const source = await repo("own", {
      Dockerfile: DOCKERFILE,
      "app.py": APP_PY,
      ".dockerignore": "secret.txt\n",
      "secret.txt": "must not reach the image\n",
    });
    const entrypoint = await detectEntrypoint(source, { build: "dockerfile" });
    expect(entrypoint).toMatchObject({
      rule: "override-dockerfile-label",
      argv: ["python3", "app.py"],
      dockerfile: "Dockerfile",
    });
    const slug = {
      raw: `file:${source.dir}`,
      kind: "file" as const,
      repo: "own",
      location: source.dir,
    };
    const lines: string[] = [];
    const image = await buildImage({
      config,
      service: "rt-owndf",
      slug,
      source,
      entrypoint,
      labels: { ...TEST_LABEL, "com.acme.team": "shop" },
      onEvent: (e) => {
        if (e.type === "log") lines.push(e.line);
      },
    });
    images.push(image);
    expect(image.built).toBe(true);
    // python:3.11-slim cannot be pulled here: it maps onto the local base, and says so.
    if (BASE_IMAGE !== "python:3.11-slim")
      expect(lines.join("\n")).toContain(`FROM python:3.11-slim -> ${BASE_IMAGE}`);

    const info = await docker.getImage(image.tag).inspect();
    expect(info.Config.User).toBe("10001:10001");
    expect(info.Config.WorkingDir).toBe("/srv");
    expect(info.Config.Entrypoint).toEqual([
      "/opt/iac-runner/bin/python",
      "-m",
      "iac_runner",
      "--",
      "python3",
      "app.py",
    ]);
    expect(info.Config.Cmd ?? []).toEqual([]);
    expect(info.Config.Env).toContain("GREETING=hello-from-own-dockerfile");
    expect(info.Config.Labels).toMatchObject({
      "io.iac.build": "dockerfile",
      "io.iac.service": "rt-owndf",
      "io.iac.entrypoint": JSON.stringify(["python3", "app.py"]),
      "io.iac.entrypoint-kind": "python-file",
      "com.example.kept": "yes",
      "com.acme.team": "shop",
      "io.iac.test": "1",
    });

    const again = await buildImage({
      config,
      service: "rt-owndf",
      slug,
      source,
      entrypoint,
      labels: { ...TEST_LABEL, "com.acme.team": "shop" },
    });
    expect(again).toEqual({ tag: image.tag, id: image.id, built: false });

    const { container, port } = await runApp(docker, image.tag, {
      name: `rt-owndf-${runId}`,
      service: "rt-owndf",
      certDir: await certs.serviceDir("rt-owndf"),
    });
    containers.push(container);
    const target = { host: "127.0.0.1", port, serverName: "rt-owndf" };
    const status = await waitForServing(target, certs.controlPlane, { deadlineMs: 60_000 });
    expect(status.status, status.message).toBe(HealthStatus_Status.SERVING);
    expect(status.argv).toEqual(["python3", "app.py"]);

    const client = runtimeClient(target, certs.controlPlane);
    const seen: string[] = [];
    try {
      for (let i = 0; i < 50 && !seen.some((l) => l.startsWith("secret present=")); i++) {
        seen.length = 0;
        await streamLogs(client, { tail: 0, follow: false }, ({ msg }) => seen.push(msg));
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
    expect(seen).toContain("greeting=hello-from-own-dockerfile");
    expect(seen).toContain("built=by RUN in the build");
    expect(seen).toContain("cwd=/srv uid=10001");
    expect(seen).toContain("secret present=False");
    await container.stop({ t: 10 });
    expect(await containerLogs(container)).toContain("got SIGTERM");
    expect((await container.inspect()).State.ExitCode).toBe(0);
  });

  it("a FROM that is neither present nor pullable fails naming the image and the line", async () => {
    const missing = `iac-test-absent-${runId}/nothing:1`;
    const source = await repo("absent", {
      Dockerfile: `FROM ${BASE_IMAGE} AS tools\nFROM ${missing}\nCOPY --from=tools /etc/os-release /x\nCMD ["python3", "-V"]\n`,
    });
    const entrypoint = await detectEntrypoint(source, { build: "dockerfile" });
    expect(entrypoint.rule).toBe("dockerfile-entrypoint");
    const err = await buildImage({
      config,
      service: "rt-owndf-absent",
      slug: { raw: `file:${source.dir}`, kind: "file", repo: "absent", location: source.dir },
      source,
      entrypoint,
      labels: TEST_LABEL,
    }).then(
      () => new Error("expected a BuildError"),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toContain(`Dockerfile:2: FROM ${missing}:`);
    expect(err.message).toMatch(/docker pull` failed/);
    expect((err as BuildError).hint).toMatch(/docker load|python:3\.11-slim/);
  });

  it("a Dockerfile whose build fails reports the step and the output", async () => {
    const source = await repo("broken", {
      Dockerfile: `FROM ${BASE_IMAGE}\nRUN echo "the repo's build step fails" && exit 7\nCMD ["python3", "-V"]\n`,
    });
    const entrypoint = await detectEntrypoint(source, { build: "dockerfile" });
    const err = await buildImage({
      config,
      service: "rt-owndf-broken",
      slug: { raw: `file:${source.dir}`, kind: "file", repo: "broken", location: source.dir },
      source,
      entrypoint,
      labels: TEST_LABEL,
    }).then(
      () => new Error("expected a BuildError"),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toMatch(/building rt-owndf-broken's own Dockerfile failed at Step 2\/3/);
    expect(err.message).toContain("the repo's build step fails");
  });
});
