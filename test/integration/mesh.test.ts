// The Envoy sidecar path (IAC_SIDECAR=envoy) checked against the RUNNING sidecars: one
// `iac deploy` of a two-service fixture (front, back), then
//   - the security properties of a sidecar (mTLS, identity, HTTP/2 only, what is reachable),
//   - the runtime API being for the control plane only (Envoy RBAC),
//   - a real mesh: front's app calls back's app through 127.0.0.1:15001, and a service of
//     another project calling the same way is refused.
// The fixture apps use the gRPC package of the runner's venv (shebang /opt/iac-runner/bin/python),
// so the test downloads nothing; a real app lists grpcio in its requirements.txt.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect as tlsConnect } from "node:tls";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { credentials, Metadata, status as GrpcStatus } from "@grpc/grpc-js";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthCheck, runtimeClient, streamLogs } from "../../src/runtime/client.js";
import { renderEnvoyConfig } from "../../src/mesh/envoy.js";
import { HealthStatus_Status, RuntimeClient } from "../../src/gen/controlplane.js";
import { ensureServiceCert } from "../../src/mesh/pki.js";
import type { CertPaths } from "../../src/kernel/types.js";
import { runtimeImages } from "../helpers/images.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const docker = new Docker({ socketPath: "/var/run/docker.sock" });
// The base and Envoy images `iac` uses here (present -> docker pull -> local substitute, by
// the CLI's own code). Without an Envoy image this file FAILS with the reason; it never skips.
const images = await runtimeImages();
const envoyImage = images.envoy.image;

// back: a gRPC server for its peers on 127.0.0.1:$IAC_PORT; it answers with the caller's
// verified identity, which its sidecar puts in x-forwarded-client-cert.
const BACK_MAIN = `#!/opt/iac-runner/bin/python
import os
from concurrent import futures

import grpc


def say(request, context):
    xfcc = dict(context.invocation_metadata()).get("x-forwarded-client-cert", "")
    caller = next((p[4:] for p in xfcc.split(";") if p.startswith("URI=")), "(none)")
    print(f"served Say for {caller}", flush=True)
    return b"pong from back to " + caller.encode()


def main():
    port = int(os.environ["IAC_PORT"])
    server = grpc.server(futures.ThreadPoolExecutor(4))
    handlers = {"Say": grpc.unary_unary_rpc_method_handler(say)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("mesh.Echo", handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"back serving peers on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


main()
`;

// front: calls back through its sidecar's outbound listener once a second.
const FRONT_MAIN = `#!/opt/iac-runner/bin/python
import os
import time

import grpc


def main():
    channel = grpc.insecure_channel(
        os.environ.get("IAC_OUTBOUND", "127.0.0.1:15001"), options=[("grpc.default_authority", "back")]
    )
    say = channel.unary_unary("/mesh.Echo/Say")
    while True:
        try:
            print(f"mesh ok: {say(b'ping', timeout=3).decode()}", flush=True)
        except grpc.RpcError as err:
            print(f"mesh error: {err.code().name}: {err.details()}", flush=True)
        time.sleep(1)


main()
`;

// Run inside a container of the stack (docker exec, the app's user): the view from its
// network namespace. argv[1] is a JSON list of operations; prints a JSON list of results.
const PROBE = `
import json, socket, sys, urllib.error, urllib.request


def http(method, path):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request("http://127.0.0.1:9901" + path, method=method), timeout=5) as r:
            return {"status": r.status, "body": r.read().decode()}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": ""}


def connect(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return "open"
    except OSError as err:
        return type(err).__name__


def call(authority, method):
    import grpc

    channel = grpc.insecure_channel("127.0.0.1:15001", options=[("grpc.default_authority", authority)])
    try:
        channel.unary_unary(method)(b"", timeout=5)
        return "OK"
    except grpc.RpcError as err:
        return f"{err.code().name} {err.details()}"


ops = {"http": http, "connect": connect, "grpc": call}
print(json.dumps([ops[op](*args) for op, *args in json.loads(sys.argv[1])]))
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 45_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

async function containerLogs(name: string): Promise<string> {
  const { stdout, stderr } = await run("docker", ["logs", name], { maxBuffer: 16 * 1024 * 1024 });
  return stdout + stderr;
}

/** Sum of a Prometheus counter's samples (all label sets) in an exposition text. */
function counter(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? "").includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

/** Calls `method` on the target with raw bytes (no proto needed) and resolves its status code. */
function rawCall(client: RuntimeClient, method: string): Promise<GrpcStatus> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      method,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new Metadata(),
      { deadline: new Date(Date.now() + 5_000) },
      (err) => resolve(err ? (err.code ?? GrpcStatus.UNKNOWN) : GrpcStatus.OK),
    );
  });
}

describe("Envoy sidecars, running (IAC_SIDECAR=envoy)", () => {
  const project = `mesh${randomBytes(3).toString("hex")}`;
  const other = `meshx${randomBytes(3).toString("hex")}`;
  const network = `iacnet-${project}`;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let reposFile: string;
  const hostPort: Record<string, number> = {};
  let controlPlane: CertPaths;
  let sanFailuresBeforeIntruder = 0;

  const iac = (...args: string[]) =>
    run("node", [path.join(ROOT, "bin/iac.js"), ...args], {
      cwd: work,
      env,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  const app = (service: string) => `${project}-${service}`;
  /** Runs PROBE's operations inside a container (the app's user, its network namespace). */
  const inside = async <T = string>(container: string, ...ops: string[][]): Promise<T[]> => {
    const { stdout } = await run(
      "docker",
      [
        "exec",
        "-u",
        "10001:10001",
        container,
        "/opt/iac-runner/bin/python",
        "-c",
        PROBE,
        JSON.stringify(ops),
      ],
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return JSON.parse(stdout) as T[];
  };
  type HttpResult = { status: number; body: string };
  const stats = async (service: string) => {
    const [r] = await inside<HttpResult>(app(service), ["http", "GET", "/stats/prometheus"]);
    expect(r!.status).toBe(200);
    return r!.body;
  };
  const client = (service: string, certs: Partial<CertPaths>): RuntimeClient => {
    const ca = readFileSync(controlPlane.caFile);
    const creds =
      certs.keyFile && certs.certFile
        ? credentials.createSsl(ca, readFileSync(certs.keyFile), readFileSync(certs.certFile))
        : credentials.createSsl(ca);
    return new RuntimeClient(`127.0.0.1:${hostPort[service]}`, creds, {
      "grpc.ssl_target_name_override": service,
      "grpc.default_authority": service,
    });
  };
  /** The last `tail` lines of a service's main(), read like `iac logs` (through its sidecar). */
  const logsOf = async (service: string, tail: number): Promise<string[]> => {
    const c = runtimeClient(
      { host: "127.0.0.1", port: hostPort[service]!, serverName: service },
      controlPlane,
    );
    const msgs: string[] = [];
    try {
      await streamLogs(c, { tail, follow: false }, (l) => msgs.push(l.msg));
    } finally {
      c.close();
    }
    return msgs;
  };
  const serviceCerts = (p: string, service: string): CertPaths => {
    const dir = path.join(work, "secrets", p, service);
    return {
      caFile: path.join(dir, "ca.pem"),
      certFile: path.join(dir, "cert.pem"),
      keyFile: path.join(dir, "key.pem"),
    };
  };

  /**
   * The intruder: a service of another project, run as the product runs a service (front's
   * image, an Envoy sidecar in its network namespace, a cert from the same dev CA) on the same
   * network. Its sidecar is even told to trust back's identity, so a refusal seen is back's.
   */
  const startIntruder = async () => {
    const certs = await ensureServiceCert({
      secretsDir: path.join(work, "secrets"),
      project: other,
      network,
      service: "front",
      validityDays: 1,
      ownerUid: 101,
    });
    const rendered = renderEnvoyConfig({
      project: other,
      service: "front",
      network,
      peers: [{ name: "back", port: 7000 }],
    });
    const trusting = rendered.replace(
      `exact: "spiffe://${other}/back"`,
      `exact: "spiffe://${project}/back"`,
    );
    expect(trusting).not.toBe(rendered);
    const cfgFile = path.join(work, "intruder-envoy.yaml");
    await writeFile(cfgFile, trusting);
    await chmod(cfgFile, 0o644);
    const frontImage = (await docker.getContainer(app("front")).inspect()).Config.Image;
    const labels = { "io.iac.project": other, "io.iac.service": "front", "io.iac.test": "1" };
    const hardening = {
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,nosuid,nodev,size=16m" },
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true"],
    };
    const intruder = await docker.createContainer({
      name: `${other}-front`,
      Image: frontImage,
      Hostname: "front",
      User: "10001:10001",
      Labels: labels,
      Env: [
        "IAC_SERVICE=front",
        `IAC_PROJECT=${other}`,
        "IAC_SIDECAR=envoy",
        "IAC_OUTBOUND=127.0.0.1:15001",
      ],
      HostConfig: { NetworkMode: network, ...hardening },
    });
    await intruder.start();
    const sidecar = await docker.createContainer({
      name: `${other}-front-envoy`,
      Image: envoyImage,
      User: "101:101",
      Labels: labels,
      Entrypoint: ["/usr/local/bin/envoy"],
      Cmd: ["-c", "/etc/envoy/envoy.yaml", "--log-level", "info"],
      HostConfig: {
        NetworkMode: `container:${intruder.id}`,
        Binds: [`${cfgFile}:/etc/envoy/envoy.yaml:ro`, `${certs.dir}:/etc/iac/certs:ro`],
        ...hardening,
      },
    });
    await sidecar.start();
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "iac-mesh-"));
    for (const [dir, text] of [
      ["mesh-back", BACK_MAIN],
      ["mesh-front", FRONT_MAIN],
    ] as const) {
      await mkdir(path.join(work, dir));
      await writeFile(path.join(work, dir, "main"), text);
      await chmod(path.join(work, dir, "main"), 0o755);
    }
    reposFile = path.join(work, "repos.yaml");
    await writeFile(
      reposFile,
      [
        "services:",
        "  - slug: file:mesh-back",
        "    name: back",
        "    port: 7000 # serves its peers here",
        "  - slug: file:mesh-front",
        "    name: front # no port: not reachable by peers",
        "",
      ].join("\n"),
    );
    env = {
      ...process.env,
      IAC_PROJECT: project,
      IAC_NETWORK: network,
      IAC_SIDECAR: "envoy",
      IAC_ENVOY_IMAGE: envoyImage,
      IAC_STATE_DIR: path.join(work, ".iac"),
      IAC_SECRETS_DIR: path.join(work, "secrets"),
      IAC_BASE_IMAGE: images.base.image,
      IAC_HEALTH_TIMEOUT_S: "60",
    };
    const { stdout } = await iac("deploy", "--file", reposFile, "--output", "json");
    const doc = JSON.parse(stdout) as {
      services: { name: string; status: string; port: number }[];
    };
    for (const s of doc.services) {
      expect(s.status, `${s.name} after deploy`).toBe("SERVING");
      hostPort[s.name] = s.port;
    }
    const cp = path.join(work, "secrets", "control-plane");
    controlPlane = {
      caFile: path.join(cp, "ca.pem"),
      certFile: path.join(cp, "cert.pem"),
      keyFile: path.join(cp, "key.pem"),
    };
    // Started now so that it has made its calls by the time its test looks.
    sanFailuresBeforeIntruder = counter(await stats("back"), "envoy_listener_ssl_fail_verify_san");
    await startIntruder();
  });

  afterAll(async () => {
    // Leave nothing of either project behind: containers, the network, the fixture images.
    const labels = [project, other].map((p) => `io.iac.project=${p}`);
    for (const label of labels)
      for (const c of await docker.listContainers({ all: true, filters: { label: [label] } }))
        await docker.getContainer(c.Id).remove({ force: true });
    for (const label of labels)
      for (const n of await docker.listNetworks({ filters: { label: [label] } }))
        await docker.getNetwork(n.Id).remove();
    // The network is shared now (outside project state, not labelled with a project): by name.
    for (const n of await docker.listNetworks({ filters: { name: [network] } }))
      if (n.Name === network)
        await docker
          .getNetwork(n.Id)
          .remove()
          .catch(() => undefined);
    for (const slug of ["file:mesh-back", "file:mesh-front"]) {
      const filters = { label: [`io.iac.slug=${slug}`] };
      for (let pass = 0; pass < 20; pass++) {
        const images = await docker.listImages({ all: true, filters });
        if (images.length === 0) break;
        for (const img of images)
          await docker
            .getImage(img.Id)
            .remove({ force: true, noprune: true })
            .catch(() => undefined); // a parent goes once its child is gone: next pass
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe("a mesh between services", () => {
    it("front's app calls back's app through 127.0.0.1:15001 (:authority back) over mTLS", async () => {
      const seen = await until("front's 'mesh ok' line", async () =>
        (await logsOf("front", 20)).find((l) => l.startsWith("mesh ok:")),
      );
      // back's app saw front's verified identity (set by back's sidecar from front's cert).
      expect(seen).toBe(`mesh ok: pong from back to spiffe://${project}/front`);
      expect(await logsOf("back", 20)).toContain(`served Say for spiffe://${project}/front`);
    });

    it("a service without port: is not reachable by its peers", async () => {
      const [reply] = await inside(app("back"), ["grpc", "front", "/mesh.Echo/Say"]);
      expect(reply).toMatch(/^UNIMPLEMENTED .*no such peer/);
    });

    it("a service of another project calling back the same way is refused by back's sidecar", async () => {
      // (started in beforeAll: see startIntruder)
      const out = await until("3 calls of the intruder", async () => {
        const text = await containerLogs(`${other}-front`);
        return (text.match(/^mesh (ok|error):/gm) ?? []).length >= 3 ? text : undefined;
      });
      expect(out).not.toMatch(/^mesh ok:/m);
      expect(out).toMatch(/^mesh error: UNAVAILABLE/m);
      // back's sidecar refused the intruder's certificate (its SAN), and back's app never saw it.
      expect(counter(await stats("back"), "envoy_listener_ssl_fail_verify_san")).toBeGreaterThan(
        sanFailuresBeforeIntruder,
      );
      const backLogs = (await logsOf("back", 0)).join("\n");
      expect(backLogs).not.toContain(`spiffe://${other}/`);
      // ...while back's own peer keeps getting through.
      expect(backLogs).toContain(`served Say for spiffe://${project}/front`);
    });
  });

  describe("security properties of a running sidecar", () => {
    it("HealthCheck through Envoy's mTLS listener -> SERVING, logged by the sidecar with the caller's identity", async () => {
      const c = runtimeClient(
        { host: "127.0.0.1", port: hostPort.back!, serverName: "back" },
        controlPlane,
      );
      try {
        expect((await healthCheck(c, 5_000)).status).toBe(HealthStatus_Status.SERVING);
      } finally {
        c.close();
      }
      await until("the sidecar's access log line", async () =>
        /inbound POST \/iac\.controlplane\.v1\.Runtime\/HealthCheck 200 grpc=OK peer=spiffe:\/\/iac\/control-plane/.test(
          await containerLogs(`${app("back")}-envoy`),
        )
          ? true
          : undefined,
      );
    });

    it("a client without a certificate is refused in the TLS handshake", async () => {
      const before = counter(await stats("back"), "envoy_listener_ssl_fail_verify_no_cert");
      const c = client("back", {});
      try {
        expect(await rawCall(c, "/iac.controlplane.v1.Runtime/HealthCheck")).toBe(
          GrpcStatus.UNAVAILABLE,
        );
      } finally {
        c.close();
      }
      expect(
        counter(await stats("back"), "envoy_listener_ssl_fail_verify_no_cert"),
      ).toBeGreaterThan(before);
    });

    it("a certificate from the same dev CA with another project's SPIFFE id is refused", async () => {
      // Same CA, same service name (so the DNS SAN fits), identity spiffe://<other>/back.
      const stranger = await ensureServiceCert({
        secretsDir: path.join(work, "secrets"),
        project: other,
        network,
        service: "back",
        validityDays: 1,
        ownerUid: 101,
      });
      const before = counter(await stats("back"), "envoy_listener_ssl_fail_verify_san");
      const c = client("back", stranger);
      try {
        expect(await rawCall(c, "/iac.controlplane.v1.Runtime/HealthCheck")).toBe(
          GrpcStatus.UNAVAILABLE,
        );
      } finally {
        c.close();
      }
      expect(counter(await stats("back"), "envoy_listener_ssl_fail_verify_san")).toBeGreaterThan(
        before,
      );
    });

    it("HTTP/1.1 is refused, even with a valid control-plane certificate", async () => {
      const before = counter(
        await stats("back"),
        "envoy_http_downstream_cx_protocol_error",
        'envoy_http_conn_manager_prefix="inbound"',
      );
      const socket = tlsConnect({
        host: "127.0.0.1",
        port: hostPort.back!,
        servername: "back",
        ca: readFileSync(controlPlane.caFile),
        cert: readFileSync(controlPlane.certFile),
        key: readFileSync(controlPlane.keyFile),
        ALPNProtocols: ["http/1.1"],
        checkServerIdentity: () => undefined,
      });
      const reply = await new Promise<{ alpn: string | false; data: string }>((resolve, reject) => {
        let data = "";
        let alpn: string | false = false;
        const timer = setTimeout(() => reject(new Error("the connection stayed open")), 10_000);
        socket.on("secureConnect", () => {
          alpn = socket.alpnProtocol ?? false;
          socket.write(
            "POST /iac.controlplane.v1.Runtime/HealthCheck HTTP/1.1\r\nHost: back\r\n" +
              "Content-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0",
          );
        });
        socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
        socket.on("error", () => undefined); // a reset is a refusal too
        socket.on("close", () => {
          clearTimeout(timer);
          resolve({ alpn, data });
        });
      });
      expect(reply.alpn).not.toBe("http/1.1"); // the server only speaks h2
      expect(reply.data).not.toMatch(/^HTTP\/1\.[01] /); // no HTTP/1.x answer at all
      expect(
        counter(
          await stats("back"),
          "envoy_http_downstream_cx_protocol_error",
          'envoy_http_conn_manager_prefix="inbound"',
        ),
      ).toBeGreaterThan(before);
    });

    it("the app's plaintext 50051 (and its peer port, and metrics) are not reachable from another container", async () => {
      // From front's network namespace, a container on the same network: only 15000 is open.
      const ports = ["15000", "50051", "7000", "9901", "15001"];
      const seen = await inside(app("front"), ...ports.map((p) => ["connect", "back", p]));
      expect(Object.fromEntries(ports.map((p, i) => [p, seen[i]]))).toEqual({
        "15000": "open",
        "50051": "ConnectionRefusedError",
        "7000": "ConnectionRefusedError",
        "9901": "ConnectionRefusedError",
        "15001": "ConnectionRefusedError",
      });
      // ...while inside back's own namespace the runner and the app do listen on loopback.
      expect(
        await inside(
          app("back"),
          ["connect", "127.0.0.1", "50051"],
          ["connect", "127.0.0.1", "7000"],
        ),
      ).toEqual(["open", "open"]);
    });

    it("127.0.0.1:9901 serves /stats/prometheus inside the namespace; /config_dump and /quitquitquit are not reachable", async () => {
      const requests = [
        ["GET", "/stats/prometheus"],
        ["GET", "/metrics"],
        ["GET", "/config_dump"],
        ["POST", "/quitquitquit"],
        ["GET", "/quitquitquit"],
        ["POST", "/runtime_modify?x=1"],
        ["GET", "/stats"],
        ["GET", "/stats/prometheus/../../config_dump"],
      ];
      const replies = await inside<HttpResult>(app("back"), ...requests.map((r) => ["http", ...r]));
      expect(replies[0]!.body).toMatch(/^envoy_server_live\{?.*\}? 1$/m);
      expect(replies[1]!.body).toMatch(/^envoy_server_live\{?.*\}? 1$/m);
      expect(Object.fromEntries(requests.map((r, i) => [r.join(" "), replies[i]!.status]))).toEqual(
        {
          "GET /stats/prometheus": 200,
          "GET /metrics": 200,
          "GET /config_dump": 404,
          "POST /quitquitquit": 404,
          "GET /quitquitquit": 404,
          "POST /runtime_modify?x=1": 404,
          "GET /stats": 404,
          "GET /stats/prometheus/../../config_dump": 404,
        },
      );
      // Envoy is still running (quitquitquit did nothing) and still answers.
      const sidecar = await docker.getContainer(`${app("back")}-envoy`).inspect();
      expect(sidecar.State.Running).toBe(true);
      expect(sidecar.State.Restarting).toBe(false);
      expect(counter(await stats("back"), "envoy_server_live")).toBe(1);
    });

    it("iac logs --follow streams new lines through Envoy", async () => {
      const child = spawn(
        "node",
        [path.join(ROOT, "bin/iac.js"), "logs", "back", "--follow", "--tail", "1", "-o", "json"],
        { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] },
      );
      const lines: { ts: string; msg: string }[] = [];
      let buffered = "";
      child.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        for (const p of parts) if (p.trim()) lines.push(JSON.parse(p));
      });
      const started = new Date();
      try {
        // front calls back once a second: back's new "served Say" lines must keep arriving.
        await until(
          "2 new lines",
          async () =>
            lines.filter((l) => new Date(l.ts) > started && /served Say/.test(l.msg)).length >= 2
              ? true
              : undefined,
          45_000, // the CLI itself can take seconds to start on a loaded machine
        );
        expect(child.exitCode).toBeNull(); // still following
      } finally {
        child.kill("SIGTERM");
      }
      // The stream went through the sidecar: its access log has the StreamLogs call once it ended.
      await until("StreamLogs in the sidecar's access log", async () =>
        /inbound POST \/iac\.controlplane\.v1\.Runtime\/StreamLogs .* peer=spiffe:\/\/iac\/control-plane/.test(
          await containerLogs(`${app("back")}-envoy`),
        )
          ? true
          : undefined,
      );
    });
  });

  describe("the runtime API is for the control plane only (Envoy RBAC)", () => {
    it("a peer of the same project (a valid, accepted certificate) gets PERMISSION_DENIED for Runtime and Health", async () => {
      const rbacDenied = async () =>
        counter(
          await stats("back"),
          "envoy_http_rbac_denied",
          'envoy_http_conn_manager_prefix="inbound"',
        );
      const before = await rbacDenied();
      const c = client("back", serviceCerts(project, "front"));
      try {
        for (const method of [
          "/iac.controlplane.v1.Runtime/HealthCheck",
          "/iac.controlplane.v1.Runtime/StreamLogs",
          "/grpc.health.v1.Health/Check",
          "/grpc.health.v1.Health/Watch",
        ])
          expect(await rawCall(c, method), method).toBe(GrpcStatus.PERMISSION_DENIED);
        // ...while the app's own methods are open to it (the same connection, the same cert).
        expect(await rawCall(c, "/mesh.Echo/Say")).toBe(GrpcStatus.OK);
      } finally {
        c.close();
      }
      // Refused by the RBAC filter (not by TLS, not by the runner): four denials counted.
      expect((await rbacDenied()) - before).toBe(4);
    });

    it("the control plane reaches only the runner, not the app's port", async () => {
      const c = client("back", controlPlane);
      try {
        expect(await rawCall(c, "/grpc.health.v1.Health/Check")).toBe(GrpcStatus.OK);
        expect(await rawCall(c, "/mesh.Echo/Say")).toBe(GrpcStatus.PERMISSION_DENIED);
      } finally {
        c.close();
      }
    });

    it("through the mesh too: front's app cannot read back's logs or probe it", async () => {
      const replies = await inside(
        app("front"),
        ["grpc", "back", "/iac.controlplane.v1.Runtime/StreamLogs"],
        ["grpc", "back", "/grpc.health.v1.Health/Check"],
      );
      for (const reply of replies) expect(reply).toMatch(/^PERMISSION_DENIED /);
      expect(replies).toHaveLength(2);
    });
  });
});
