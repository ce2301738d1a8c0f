// Issue 12 item 6: OpenTelemetry in the app. A fixture whose main() makes a span, an HTTP call
// with urllib (auto-instrumented) and a counter is built with `telemetry: auto`: the build adds
// opentelemetry-distro to its venv (it resolves against the app's pins, pip check passes) and
// the runner runs main() under opentelemetry-instrument. Without an endpoint its spans and
// metrics appear on stdout, one JSON line each; with OTEL_EXPORTER_OTLP_ENDPOINT a real OTLP/HTTP
// receiver in this test (on the Docker bridge's gateway address) gets them. An app that pins
// an incompatible OpenTelemetry is built without it, and the build and the runner say why.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectEntrypoint } from "../../src/detect/entrypoint.js";
import { buildImage } from "../../src/image/build.js";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import type { BuiltImage, Source } from "../../src/kernel/types.js";
import { dockerClient } from "../../src/platform/docker.js";
import { waitForServing } from "../../src/runtime/client.js";
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

const MAIN_PY = `import http.server, signal, sys, threading, time, urllib.request

from opentelemetry import metrics, trace


class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"pong")

    def log_message(self, *args):
        pass


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = http.server.HTTPServer(("127.0.0.1", 0), Ping)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tracer = trace.get_tracer("fixture")
    jobs = metrics.get_meter("fixture").create_counter("fixture.jobs")
    with tracer.start_as_current_span("fixture-job"):
        body = urllib.request.urlopen(f"http://127.0.0.1:{srv.server_port}/ping").read()
        jobs.add(1)
    print(f"job done: {body.decode()}", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
`;

const skipReason = await dockerSkipReason();
if (skipReason) console.warn(`SKIPPING app telemetry integration tests: ${skipReason}`);

/** Every stdout line of the container that is a JSON object. */
function jsonLines(logs: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of logs.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      out.push(JSON.parse(t) as Record<string, unknown>);
    } catch {
      // a line that only looks like JSON
    }
  }
  return out;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe.skipIf(skipReason !== undefined)("OpenTelemetry in the app (telemetry: auto)", () => {
  let docker: Docker;
  let config: Config;
  let root: Awaited<ReturnType<typeof tmpRoot>>;
  let certs: RuntimeCerts;
  let image: BuiltImage;
  const images: BuiltImage[] = [];
  const containers: Docker.Container[] = [];
  const runId = Date.now().toString(36);
  const buildLines: string[] = [];

  async function build(name: string, files: Record<string, string>, lines: string[] = []) {
    const dir = path.join(root.dir, "repos", name);
    await writeFixtureFiles(dir, files);
    const source: Source = { dir, root: dir, commit: `local-test-${name}-${runId}`, via: "local" };
    const built = await buildImage({
      config,
      service: `rt-${name}`,
      slug: { raw: `file:${dir}`, kind: "file", repo: name, location: dir },
      source,
      entrypoint: await detectEntrypoint(source),
      // A label of this run's own makes the tag unique: these tests judge the build's own
      // verdict, which an image reused from an earlier run (build skipped) does not carry.
      labels: { ...TEST_LABEL, "io.iac.test-run": runId },
      onEvent: (e) => {
        if (e.type === "log") lines.push(e.line);
      },
    });
    images.push(built);
    return built;
  }

  async function start(service: string, env: string[] = []) {
    const { container, port } = await runApp(docker, image.tag, {
      name: `${service}-${runId}`,
      service,
      certDir: await certs.serviceDir(service),
      env: ["OTEL_METRIC_EXPORT_INTERVAL=1000", ...env],
    });
    containers.push(container);
    const status = await waitForServing(
      { host: "127.0.0.1", port, serverName: service },
      certs.controlPlane,
      { deadlineMs: 60_000 },
    );
    expect(status.status, status.message).toBe(HealthStatus_Status.SERVING);
    // What the runner reports is main()'s argv, not the instrumentation wrapper.
    expect(status.argv).toEqual(["python", "main.py"]);
    return container;
  }

  beforeAll(async () => {
    docker = dockerClient({});
    root = await tmpRoot("iac-otel-");
    config = loadConfig({ ...process.env, IAC_BASE_IMAGE: BASE_IMAGE }, {}, root.dir);
    certs = await makeCerts(path.join(root.dir, "secrets"), "rt-test");
    image = await build("otel", { "main.py": MAIN_PY }, buildLines);
  });

  afterAll(async () => {
    for (const c of containers) await c.remove({ force: true }).catch(() => {});
    for (const img of images)
      await docker
        .getImage(img.tag)
        .remove({ force: true, noprune: true })
        .catch(() => {});
    await root?.cleanup();
  });

  it("the build installs it (pip check passed) and says so", () => {
    expect(image.telemetry?.enabled, image.telemetry?.reason).toBe(true);
    expect(image.telemetry?.reason).toMatch(/pip check passed/);
    expect(buildLines.join("\n")).toMatch(/OpenTelemetry auto-instrumentation of main\(\): on/);
  });

  it("without an endpoint: main()'s spans and metrics on stdout, one JSON line each", async () => {
    const container = await start("rt-otel-stdout");
    const found = await until("the app's spans and metrics on stdout", async () => {
      const logs = await containerLogs(container);
      const records = jsonLines(logs);
      const job = records.find((r) => r.name === "fixture-job");
      const http = records.find((r) => r.name === "GET" && r.kind === "SpanKind.CLIENT");
      const metric = records.find((r) => JSON.stringify(r).includes('"fixture.jobs"'));
      return job && http && metric ? { logs, job, http, metric } : undefined;
    });
    expect(found.logs).toContain("job done: pong");
    expect(found.logs).toMatch(
      /OpenTelemetry auto-instrumentation of main\(\): on, traces and metrics to stdout/,
    );
    // The urllib call is a child of main()'s own span: one trace.
    const ctx = (r: Record<string, unknown>) => r.context as { trace_id: string };
    expect(ctx(found.http).trace_id).toBe(ctx(found.job).trace_id);
    const resource = (found.job.resource as { attributes: Record<string, string> }).attributes;
    expect(resource["service.name"]).toBe("rt-otel-stdout");
    expect(JSON.stringify(found.metric)).toContain("resource_metrics");
  });

  it("with OTEL_EXPORTER_OTLP_ENDPOINT: a local OTLP/HTTP receiver gets them", async () => {
    const bridge = await docker.getNetwork("bridge").inspect();
    const gateway = (bridge.IPAM?.Config?.[0] as { Gateway?: string } | undefined)?.Gateway;
    expect(gateway, "the default bridge network has a gateway address").toBeTruthy();
    const received: { path: string; body: Buffer }[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: Buffer.concat(chunks) });
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, gateway, resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const container = await start("rt-otel-otlp", [
        `OTEL_EXPORTER_OTLP_ENDPOINT=http://${gateway}:${port}`,
      ]);
      const has = (p: string, text: string) =>
        received.some((r) => r.path === p && r.body.includes(Buffer.from(text)));
      await until("OTLP traces and metrics from main()", async () =>
        has("/v1/traces", "fixture-job") && has("/v1/metrics", "fixture.jobs") ? true : undefined,
      );
      expect(has("/v1/traces", "rt-otel-otlp")).toBe(true); // service.name in the resource
      const stdout = jsonLines(await containerLogs(container));
      expect(stdout.some((r) => r.name === "fixture-job")).toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("pins that conflict with it: built without it, and the build and the runner say why", async () => {
    const lines: string[] = [];
    const conflict = await build(
      "otel-conflict",
      {
        "requirements.txt": "opentelemetry-api==1.20.0\n",
        "main.py": "import time\nprint('plain app', flush=True)\nwhile True:\n    time.sleep(1)\n",
      },
      lines,
    );
    expect(conflict.telemetry?.enabled).toBe(false);
    expect(conflict.telemetry?.reason).toMatch(/does not resolve against the app's pins/);
    expect(conflict.telemetry?.reason).toMatch(/opentelemetry-api/);
    expect(lines.join("\n")).toMatch(
      /warning: OpenTelemetry auto-instrumentation of main\(\) left out/,
    );
    const { container, port } = await runApp(docker, conflict.tag, {
      name: `rt-otel-conflict-${runId}`,
      service: "rt-otel-conflict",
      certDir: await certs.serviceDir("rt-otel-conflict"),
    });
    containers.push(container);
    const status = await waitForServing(
      { host: "127.0.0.1", port, serverName: "rt-otel-conflict" },
      certs.controlPlane,
      { deadlineMs: 60_000 },
    );
    expect(status.status).toBe(HealthStatus_Status.SERVING);
    const logs = await containerLogs(container);
    expect(logs).toMatch(
      /OpenTelemetry auto-instrumentation of main\(\): off: OpenTelemetry does not resolve/,
    );
    expect(logs).toContain("plain app");
  });
});
