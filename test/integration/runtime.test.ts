// Builds one image per entrypoint kind from tiny fixture repos on the local base image,
// runs each like the Terraform module does with IAC_SIDECAR=none, and talks to the runner
// over mTLS with src/runtime/client.ts.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";
import { Server, ServerCredentials, status as GrpcStatus } from "@grpc/grpc-js";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import {
  healthCheck,
  RuntimeCallError,
  runtimeClient,
  streamLogs,
  isDefinitiveFailure,
  waitForServing,
} from "../../src/runtime/client.js";
import { dockerClient } from "../../src/platform/docker.js";
import { BuildError, buildImage } from "../../src/image/build.js";
import type { DeployEvent } from "../../src/kernel/events.js";
import {
  HealthStatus,
  HealthStatus_Status,
  RuntimeService,
  type RuntimeServer,
} from "../../src/gen/controlplane.js";
import type { BuiltImage, EntrypointKind } from "../../src/kernel/types.js";
import {
  BASE_IMAGE,
  containerLogs,
  makeCerts,
  makeFixture,
  runApp,
  TEST_LABEL,
  tmpRoot,
  type Fixture,
  type RuntimeCerts,
  dockerSkipReason,
} from "../helpers/runtime-fixtures.js";

const KINDS: EntrypointKind[] = [
  "python-file",
  "python-main-function",
  "console-script",
  "python-module",
  "executable",
];

const skipReason = await dockerSkipReason();
if (skipReason) console.warn(`SKIPPING runtime integration tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)("runtime images (IAC_SIDECAR=none)", () => {
  let docker: Docker;
  let config: Config;
  let root: Awaited<ReturnType<typeof tmpRoot>>;
  let certs: RuntimeCerts;
  const images: BuiltImage[] = [];
  const containers: Docker.Container[] = [];
  const built = new Map<string, { fixture: Fixture; image: BuiltImage; buildMs: number }>();
  const runId = Date.now().toString(36);

  async function build(fixture: Fixture, service: string, events?: DeployEvent[]) {
    const t0 = Date.now();
    const image = await buildImage({
      config,
      service,
      slug: fixture.slug,
      source: fixture.source,
      entrypoint: fixture.entrypoint,
      labels: TEST_LABEL,
      onEvent: (e) => events?.push(e),
    });
    images.push(image);
    return { image, buildMs: Date.now() - t0 };
  }

  beforeAll(async () => {
    docker = dockerClient({});
    root = await tmpRoot("iac-runtime-");
    config = loadConfig({ ...process.env, IAC_BASE_IMAGE: BASE_IMAGE }, {}, root.dir);
    certs = await makeCerts(path.join(root.dir, "secrets"), "rt-test");
    for (const kind of KINDS) {
      const fixture = await makeFixture(path.join(root.dir, "repos"), kind);
      built.set(kind, { fixture, ...(await build(fixture, `rt-${kind}`)) });
    }
    const failing = await makeFixture(path.join(root.dir, "repos"), "python-file", { exitCode: 3 });
    built.set("failing", { fixture: failing, ...(await build(failing, "rt-failing")) });
    console.info(
      "runtime build times (ms):",
      Object.fromEntries([...built].map(([k, v]) => [k, v.buildMs])),
    );
  });

  afterAll(async () => {
    for (const c of containers) await c.remove({ force: true }).catch(() => {});
    // noprune keeps the shared runner layers as build cache for the next run.
    for (const img of images) {
      await docker
        .getImage(img.tag)
        .remove({ force: true, noprune: true })
        .catch(() => {});
    }
    await root?.cleanup();
  });

  it("labels images and runs them as the non-root user with the runner as entrypoint", async () => {
    const { fixture, image } = built.get("python-file")!;
    const info = await docker.getImage(image.tag).inspect();
    expect(image.tag).toMatch(/^iac\/rt-python-file:[0-9a-f]{20}$/);
    expect(info.Config.User).toBe("10001:10001");
    expect(info.Config.WorkingDir).toBe("/app");
    expect(info.Config.Entrypoint).toEqual([
      "/opt/iac-runner/bin/python",
      "-m",
      "iac_runner",
      "--",
      "python",
      "main.py",
    ]);
    expect(info.Config.Labels).toMatchObject({
      "io.iac.service": "rt-python-file",
      "io.iac.slug": fixture.slug.raw,
      "io.iac.commit": fixture.source.commit,
      "io.iac.entrypoint": JSON.stringify(["python", "main.py"]),
      "org.opencontainers.image.revision": fixture.source.commit,
      "io.iac.test": "1",
    });
    expect(Object.keys(info.Config.ExposedPorts ?? {}).sort()).toEqual(["15000/tcp", "50051/tcp"]);
    expect(info.Config.Healthcheck?.Test).toEqual([
      "CMD",
      "/opt/iac-runner/bin/python",
      "-m",
      "iac_runner",
      "probe",
    ]);
  });

  it("skips the build when the content-hash tag exists", async () => {
    const { fixture, image } = built.get("python-file")!;
    const events: DeployEvent[] = [];
    const again = await build(fixture, "rt-python-file", events);
    expect(again.image).toEqual({ tag: image.tag, id: image.id, built: false });
    expect(events.some((e) => e.type === "log" && /build skipped/.test(e.line))).toBe(true);
  });

  it("every entrypoint kind serves SERVING, streams main()'s output, and stops gracefully", async () => {
    await Promise.all(
      KINDS.map(async (kind) => {
        const { fixture, image } = built.get(kind)!;
        const service = `rt-${kind}`;
        const { container, port } = await runApp(docker, image.tag, {
          name: `rt-${kind}-${runId}`,
          service,
          certDir: await certs.serviceDir(service),
        });
        containers.push(container);
        const target = { host: "127.0.0.1", port, serverName: service };
        const status = await waitForServing(target, certs.controlPlane, { deadlineMs: 60_000 });
        expect(status.status, `${kind}: ${status.message}`).toBe(HealthStatus_Status.SERVING);
        expect(status.service).toBe(service);
        expect(status.phase).toBe("running");
        expect(status.argv).toEqual(fixture.entrypoint.argv);

        const client = runtimeClient(target, certs.controlPlane);
        try {
          const lines: { msg: string; stream: string }[] = [];
          for (let i = 0; i < 50 && !lines.some((l) => l.msg === fixture.marker); i++) {
            lines.length = 0;
            await streamLogs(client, { tail: 0, follow: false }, ({ msg, stream }) =>
              lines.push({ msg, stream }),
            );
            if (!lines.some((l) => l.msg === fixture.marker))
              await new Promise((r) => setTimeout(r, 100));
          }
          expect(lines).toContainEqual({ msg: fixture.marker, stream: "stdout" });
          expect(lines).toContainEqual({ msg: "to stderr", stream: "stderr" });
        } finally {
          client.close();
        }

        if (kind === "python-file") {
          // The image's HEALTHCHECK command, run the way Docker runs it (mTLS to itself).
          const probe = await container.exec({
            Cmd: ["/opt/iac-runner/bin/python", "-m", "iac_runner", "probe"],
            AttachStdout: true,
            AttachStderr: true,
          });
          const out = await probe.start({});
          await new Promise((r) => out.on("end", r).resume());
          expect((await probe.inspect()).ExitCode).toBe(0);
          // No wheelhouse and no pip in the image (issue 14: image size); setuptools stays.
          const lean = await container.exec({
            Cmd: [
              "sh",
              "-c",
              "test ! -e /opt/iac-wheels && ! python -c 'import pip' 2>/dev/null && python -c 'import setuptools'",
            ],
            AttachStdout: true,
            AttachStderr: true,
          });
          const leanOut = await lean.start({});
          await new Promise((r) => leanOut.on("end", r).resume());
          expect((await lean.inspect()).ExitCode).toBe(0);
        }
        await container.stop({ t: 10 });
        const info = await container.inspect();
        const logs = await containerLogs(container);
        expect(logs).toContain("forwarded SIGTERM");
        expect(logs).toContain("got SIGTERM");
        expect(info.State.ExitCode, logs).toBe(0);
      }),
    );
  });

  it("a failing main() reports NOT_SERVING with its exit code; follow streams new lines", async () => {
    const { fixture, image } = built.get("failing")!;
    const { container, port } = await runApp(docker, image.tag, {
      name: `rt-failing-${runId}`,
      service: "rt-failing",
      certDir: await certs.serviceDir("rt-failing"),
    });
    containers.push(container);
    const target = { host: "127.0.0.1", port, serverName: "rt-failing" };
    const status = await waitForServing(target, certs.controlPlane, { deadlineMs: 60_000 });
    expect(status.status).toBe(HealthStatus_Status.NOT_SERVING);
    expect(status.exitCode).toBe(3);
    expect(status.phase).toBe("failed");
    expect(status.message).toContain("exited with code 3");

    const client = runtimeClient(target, certs.controlPlane);
    try {
      expect((await healthCheck(client, 5_000)).exitCode).toBe(3);
      const ac = new AbortController();
      const seen: string[] = [];
      await streamLogs(
        client,
        { tail: 0, follow: true },
        (l) => {
          seen.push(l.msg);
          if (l.msg.includes("exited with code 3")) ac.abort();
        },
        ac.signal,
      );
      expect(seen).toContain(fixture.marker);
    } finally {
      client.close();
    }
    await container.stop({ t: 5 });
    expect((await container.inspect()).State.ExitCode).toBe(3);
  });

  it("rejects a client without the control-plane certificate (wrong SAN)", async () => {
    const { image } = built.get("python-module")!;
    const { container, port } = await runApp(docker, image.tag, {
      name: `rt-san-${runId}`,
      service: "rt-python-module",
      certDir: await certs.serviceDir("rt-python-module"),
    });
    containers.push(container);
    await waitForServing(
      { host: "127.0.0.1", port, serverName: "rt-python-module" },
      certs.controlPlane,
      { deadlineMs: 60_000 },
    );
    // The server presents rt-python-module's cert: expecting another identity must fail.
    await expect(
      waitForServing({ host: "127.0.0.1", port, serverName: "someone-else" }, certs.controlPlane, {
        deadlineMs: 1_500,
      }),
    ).rejects.toThrow(/did not answer/);
  });

  it("the runtime API is for the control plane only: a peer's valid cert gets PERMISSION_DENIED; the probe passes", async () => {
    const { image } = built.get("python-file")!;
    const service = "rt-python-file";
    const { container, port } = await runApp(docker, image.tag, {
      name: `rt-peer-${runId}`,
      service,
      certDir: await certs.serviceDir(service),
    });
    containers.push(container);
    const target = { host: "127.0.0.1", port, serverName: service };
    await waitForServing(target, certs.controlPlane, { deadlineMs: 60_000 });
    // Another service of the same project: its cert is valid (same CA, same project)...
    const peerDir = await certs.serviceDir("rt-peer");
    const peer = runtimeClient(target, {
      caFile: path.join(peerDir, "ca.pem"),
      certFile: path.join(peerDir, "cert.pem"),
      keyFile: path.join(peerDir, "key.pem"),
    });
    try {
      // ...but it may neither probe the service nor read its logs.
      const err = await healthCheck(peer, 5_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RuntimeCallError);
      expect((err as RuntimeCallError).grpcCode).toBe(GrpcStatus.PERMISSION_DENIED);
      expect((err as RuntimeCallError).message).toContain("spiffe://rt-test/rt-peer");
      const logs = await streamLogs(peer, { tail: 10, follow: false }, () => {}).catch(
        (e: unknown) => e,
      );
      expect((logs as RuntimeCallError).grpcCode).toBe(GrpcStatus.PERMISSION_DENIED);
    } finally {
      peer.close();
    }
    // The image's HEALTHCHECK probe presents the service's own cert: Health/Check is allowed.
    const exec = await container.exec({
      Cmd: ["/opt/iac-runner/bin/python", "-m", "iac_runner", "probe"],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({});
    await new Promise((resolve) => stream.on("end", resolve).resume());
    expect((await exec.inspect()).ExitCode).toBe(0);
  });

  it("a failed build names the failing step and its last log lines", async () => {
    const fixture = await makeFixture(path.join(root.dir, "broken"), "console-script");
    fixture.source = { ...fixture.source, commit: "local-test-broken-v1" };
    // An installProject build of a pyproject that cannot be built.
    const bad = path.join(fixture.source.dir, "pyproject.toml");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(
      bad,
      '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "hello"\nversion = "not a version"\n',
    );
    const err = await build(fixture, "rt-broken").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).step).toMatch(/^Step \d+\/\d+ : RUN /);
    expect((err as BuildError).message).toMatch(/last build output/);
    expect(existsSync(fixture.source.dir)).toBe(true);
  });
});

// The control-plane client against a real grpc-js server on loopback (mTLS with pki.ts
// certs): retry/deadline behaviour of waitForServing and log streaming, no Docker needed.
describe("controlplane client (loopback server)", () => {
  let root: Awaited<ReturnType<typeof tmpRoot>>;
  let certs: RuntimeCerts;
  let serverCreds: ServerCredentials;
  const servers: Server[] = [];

  beforeAll(async () => {
    root = await tmpRoot("iac-cp-");
    certs = await makeCerts(path.join(root.dir, "secrets"), "cp-test");
    const dir = await certs.serviceDir("svc-a");
    const [ca, cert, key] = await Promise.all(
      ["ca.pem", "cert.pem", "key.pem"].map((f) => readFile(path.join(dir, f))),
    );
    serverCreds = ServerCredentials.createSsl(
      ca!,
      [{ private_key: key!, cert_chain: cert! }],
      true,
    );
  });
  afterAll(async () => {
    for (const s of servers) s.forceShutdown();
    await root?.cleanup();
  });

  function status(over: Partial<HealthStatus>): HealthStatus {
    return HealthStatus.fromPartial({ service: "svc-a", phase: "running", ...over });
  }

  async function serve(impl: Partial<RuntimeServer>, port = 0): Promise<number> {
    const server = new Server();
    server.addService(RuntimeService, {
      healthCheck: (_call, cb) => cb(null, status({ status: HealthStatus_Status.SERVING })),
      streamLogs: (call) => call.end(),
      ...impl,
    } as RuntimeServer);
    servers.push(server);
    return new Promise((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, serverCreds, (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
  }

  async function freePort(): Promise<number> {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const { port } = srv.address() as AddressInfo;
    await new Promise((r) => srv.close(r));
    return port;
  }

  it("waits for a server that is not listening yet", async () => {
    const port = await freePort();
    const attempts: (HealthStatus | Error)[] = [];
    setTimeout(() => void serve({}, port), 400);
    const res = await waitForServing(
      { host: "127.0.0.1", port, serverName: "svc-a" },
      certs.controlPlane,
      {
        deadlineMs: 10_000,
        onAttempt: (_n, r) => attempts.push(r),
      },
    );
    expect(res.status).toBe(HealthStatus_Status.SERVING);
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts[0]).toBeInstanceOf(RuntimeCallError);
  });

  it("returns a terminal failure at once and a non-terminal one at the deadline", async () => {
    const failed = await serve({
      healthCheck: (_c, cb) =>
        cb(null, status({ status: HealthStatus_Status.NOT_SERVING, phase: "failed", exitCode: 3 })),
    });
    let n = 0;
    const res = await waitForServing(
      { host: "127.0.0.1", port: failed, serverName: "svc-a" },
      certs.controlPlane,
      { deadlineMs: 10_000, onAttempt: () => n++ },
    );
    expect([res.phase, res.exitCode, n]).toEqual(["failed", 3, 1]);

    // A restart inside the runner's stability window: definitive, with the failed run's code.
    const crashLoop = await serve({
      healthCheck: (_c, cb) =>
        cb(
          null,
          status({
            status: HealthStatus_Status.NOT_SERVING,
            phase: "running",
            exitCode: 3,
            restarts: 1,
          }),
        ),
    });
    n = 0;
    const looped = await waitForServing(
      { host: "127.0.0.1", port: crashLoop, serverName: "svc-a" },
      certs.controlPlane,
      { deadlineMs: 10_000, onAttempt: () => n++ },
    );
    expect(isDefinitiveFailure(looped)).toBe(true);
    expect([looped.exitCode, looped.restarts, n]).toEqual([3, 1, 1]);

    // Still inside the window, nothing failed yet: keep asking until the deadline.
    const starting = await serve({
      healthCheck: (_c, cb) =>
        cb(null, status({ status: HealthStatus_Status.NOT_SERVING, phase: "running" })),
    });
    n = 0;
    const last = await waitForServing(
      { host: "127.0.0.1", port: starting, serverName: "svc-a" },
      certs.controlPlane,
      { deadlineMs: 800, onAttempt: () => n++ },
    );
    expect(last.phase).toBe("running");
    expect(n).toBeGreaterThan(1);
  });

  it("stops waiting as soon as it is aborted", async () => {
    const starting = await serve({
      healthCheck: (_c, cb) =>
        cb(null, status({ status: HealthStatus_Status.NOT_SERVING, phase: "running" })),
    });
    const abort = new AbortController();
    setTimeout(() => abort.abort("SIGINT"), 300);
    const t0 = Date.now();
    await expect(
      waitForServing(
        { host: "127.0.0.1", port: starting, serverName: "svc-a" },
        certs.controlPlane,
        {
          deadlineMs: 60_000,
          signal: abort.signal,
        },
      ),
    ).rejects.toBe("SIGINT");
    // Ends with the abort, not at the 60 s deadline.
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it("throws with the last error when nothing answers, and on a SAN mismatch", async () => {
    const port = await freePort();
    await expect(
      waitForServing({ host: "127.0.0.1", port, serverName: "svc-a" }, certs.controlPlane, {
        deadlineMs: 600,
      }),
    ).rejects.toThrow(/svc-a at 127\.0\.0\.1:\d+ did not answer/);
    const up = await serve({});
    await expect(
      waitForServing({ host: "127.0.0.1", port: up, serverName: "svc-b" }, certs.controlPlane, {
        deadlineMs: 600,
      }),
    ).rejects.toBeInstanceOf(RuntimeCallError);
  });

  it("streams log lines and stops following on abort", async () => {
    const port = await serve({
      streamLogs: (call) => {
        expect(call.request).toMatchObject({ tail: 2, follow: true });
        for (const msg of ["a", "b"]) call.write({ ts: new Date(0), msg, stream: "stdout" });
        // Follow: keep the stream open until the client cancels.
      },
    });
    const client = runtimeClient(
      { host: "127.0.0.1", port, serverName: "svc-a" },
      certs.controlPlane,
    );
    try {
      const ac = new AbortController();
      const got: { ts: string; msg: string; stream: string }[] = [];
      await streamLogs(
        client,
        { tail: 2, follow: true },
        (l) => {
          got.push(l);
          if (got.length === 2) ac.abort();
        },
        ac.signal,
      );
      expect(got).toEqual([
        { ts: "1970-01-01T00:00:00.000Z", msg: "a", stream: "stdout" },
        { ts: "1970-01-01T00:00:00.000Z", msg: "b", stream: "stdout" },
      ]);
      expect((await healthCheck(client, 2_000)).status).toBe(HealthStatus_Status.SERVING);
    } finally {
      client.close();
    }
  });

  it("names the missing certificate file", () => {
    expect(() =>
      runtimeClient(
        { host: "127.0.0.1", port: 1, serverName: "x" },
        { ...certs.controlPlane, keyFile: path.join(root.dir, "nope.pem") },
      ),
    ).toThrow(/client key .*nope\.pem/);
  });
});
