// The admin API end to end on loopback and on a real Unix socket: routes, validation, 409,
// SSE (streamed deploys, replay then follow), socket trust model, and `iac serve` itself.
// The pipeline is a controllable implementation of the Pipeline interface (the boundary
// the server is built against); auth uses the local Supabase server with real tokens.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/kernel/config.js";
import { IacError, NotFoundError, UsageError } from "../../src/kernel/errors.js";
import { logEvent, stageEvent, type EventSink } from "../../src/kernel/events.js";
import type { DeployReport, Pipeline, Release } from "../../src/api/pipeline.js";
import { credentials, Metadata, status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import {
  ControlPlaneClient,
  HealthStatus_Status,
  type DeployResult,
} from "../../src/gen/controlplane.js";
import { createServer, type ApiServer } from "../../src/api/server.js";
import { ROUTES } from "../../src/api/contract.js";
import { openApiDocument } from "../../src/api/openapi.js";
import type { ServiceSpec } from "../../src/kernel/types.js";
import { call, sse, type Target } from "../helpers/http.js";
import { startFakeSupabase, type FakeSupabase } from "../helpers/supabase-server.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

// ---------------------------------------------------------------------------------------
// a controllable Pipeline: each deploy waits until the test releases (or fails) it

interface PendingDeploy {
  req: { project: string; services: ServiceSpec[] };
  onEvent: EventSink;
  release: () => void;
  fail: (err: Error) => void;
  signal?: AbortSignal;
}

function testPipeline() {
  const pending: PendingDeploy[] = [];
  const waiters: Array<(d: PendingDeploy) => void> = [];
  const deployed = new Map<string, string[]>();
  const releases = new Map<string, Release[]>();
  const record = (
    project: string,
    services: { name: string; slug: string; status: string }[],
    principal: string | undefined,
    kind: "deploy" | "rollback",
  ) => {
    const list = releases.get(project) ?? [];
    list.push({
      number: list.length + 1,
      time: new Date().toISOString(),
      principal: principal ?? "?",
      kind,
      network: "iacnet",
      services: services.map((s) => ({
        ...s,
        commit: "a".repeat(40),
        image: `iac/${s.name}:${list.length}`,
        env: {},
      })),
    });
    releases.set(project, list);
  };
  const pipeline: Pipeline = {
    async deploy(_config, req, onEvent, signal): Promise<DeployReport> {
      for (const s of req.services) onEvent(stageEvent("queued", s.name, s.slug.raw));
      onEvent(logEvent("terraform", "Terraform will perform the following actions:"));
      await new Promise<void>((resolve, reject) => {
        const d: PendingDeploy = { req, onEvent, release: resolve, fail: reject, signal };
        signal?.addEventListener("abort", () => reject(new Error("aborted")));
        pending.push(d);
        waiters.splice(0).forEach((w) => w(d));
      });
      onEvent(logEvent("terraform", "Apply complete! Resources: 2 added, 0 changed, 0 destroyed."));
      const report: DeployReport = {
        project: req.project,
        services: req.services.map((s, i) => ({
          name: s.name,
          slug: s.slug.raw,
          commit: "a".repeat(40),
          status: s.name.includes("broken") ? "NOT_SERVING" : "SERVING",
          port: 20000 + i,
        })),
      };
      for (const s of report.services)
        onEvent(stageEvent(s.status === "SERVING" ? "done" : "failed", s.name, s.status));
      deployed.set(
        req.project,
        req.services.map((s) => s.name),
      );
      record(req.project, report.services, req.principal, "deploy");
      onEvent({ type: "result", ts: new Date().toISOString(), result: report });
      return report;
    },
    async rollback(_config, req, onEvent) {
      const list = releases.get(req.project) ?? [];
      const target = req.to ? list.find((r) => r.number === req.to) : list.at(-2);
      if (!target) throw new UsageError(`project '${req.project}' has nothing to roll back to`);
      onEvent(stageEvent("apply", undefined, `rolling back to ${target.number}`));
      const report = {
        project: req.project,
        services: target.services.map((s) => ({
          name: s.name,
          slug: s.slug,
          status: "SERVING" as const,
        })),
        rolled_back_to: target.number,
      };
      record(req.project, report.services, req.principal, "rollback");
      return report;
    },
    async history(_config, project) {
      return releases.get(project) ?? [];
    },
    async overview() {
      return [...deployed.keys()].map((project) => ({
        project,
        state: "deployed" as const,
        services: (deployed.get(project) ?? []).map((name) => ({
          name,
          status: "SERVING",
          containers: [],
        })),
      }));
    },
    async destroy(_config, project, onEvent) {
      onEvent(stageEvent("destroy", undefined, `terraform destroy (project ${project})`));
      const names = deployed.get(project) ?? [];
      deployed.delete(project);
      return { removed: names.map((n) => `${project}-${n}`) };
    },
    async health(_config, project) {
      const names = deployed.get(project);
      if (!names)
        throw new NotFoundError(`project '${project}' has no deployed services`, "deploy it first");
      return names.map((name, i) => ({
        name,
        status: "SERVING" as const,
        phase: "running",
        port: 20000 + i,
      }));
    },
    async streamLogs(_config, project, service, opts, onLine, signal) {
      if (!deployed.get(project)?.includes(service)) {
        throw new NotFoundError(`no service '${service}' in project '${project}'`);
      }
      for (let i = 0; i < Math.min(opts.tail || 3, 3); i++) {
        onLine({ ts: new Date().toISOString(), msg: `line ${i}`, stream: "stdout" });
      }
      if (opts.follow) {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      }
    },
    async controlPlaneHealth() {
      return {
        ok: true,
        checks: {
          docker: { ok: true, detail: "test pipeline" },
          terraform: { ok: true, detail: "test" },
        },
      };
    },
  };
  return {
    pipeline,
    pending,
    nextDeploy: (): Promise<PendingDeploy> =>
      new Promise((resolve) => {
        const unclaimed = pending.find((d) => !(d as { claimed?: boolean }).claimed);
        if (unclaimed) {
          (unclaimed as { claimed?: boolean }).claimed = true;
          return resolve(unclaimed);
        }
        waiters.push((d) => {
          (d as { claimed?: boolean }).claimed = true;
          resolve(d);
        });
      }),
  };
}

// ---------------------------------------------------------------------------------------

let sb: FakeSupabase;
const tmpDirs: string[] = [];
const servers: ApiServer[] = [];

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "iac-api-"));
  tmpDirs.push(d);
  return d;
}

function cfg(env: Record<string, string> = {}): Config {
  const dir = tmp();
  return loadConfig(
    {
      IAC_STATE_DIR: path.join(dir, "state"),
      SUPABASE_URL: sb.url,
      SUPABASE_SERVICE_ROLE_KEY: sb.secretKey,
      IAC_PROJECT: "demo",
      IAC_LOG_LEVEL: "silent",
      ...env,
    },
    {},
    dir,
  );
}

async function start(
  pipeline: Pipeline,
  env: Record<string, string> = {},
): Promise<{ server: ApiServer; tcp: Target; uds: Target; socketPath: string }> {
  const socketPath = path.join(tmp(), "iac.sock");
  const server = await createServer({
    config: cfg(env),
    pipeline,
    logger: pino({ level: "silent" }),
    shutdownGraceMs: 100,
  });
  servers.push(server);
  const bound = await server.listen({ http: { host: "127.0.0.1", port: 0 }, socketPath });
  return { server, tcp: { base: bound.httpUrl }, uds: { socketPath }, socketPath };
}

beforeAll(async () => {
  sb = await startFakeSupabase();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(async () => {
  await sb.close();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

const svcKey = () => ({ authorization: `Bearer ${sb.secretKey}` });

describe("deploys", () => {
  it("POST /deploy: 202 with links, 409 while the project is busy, status and replayed logs after", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const r = await call(uds, "POST", "/deploy", {
      body: { slugs: ["gh:acme/api#main", "gh:acme/worker"] },
    });
    expect(r.status).toBe(202);
    const { id, status_url, logs_url, project } = r.json();
    expect(project).toBe("demo");
    expect(status_url).toBe(`/deployments/${id}`);
    expect(logs_url).toBe(`/deployments/${id}/logs`);
    expect(r.headers.location).toBe(status_url);
    const d = await tp.nextDeploy();
    expect(d.req.services.map((s) => s.name)).toEqual(["api", "worker"]);
    expect(d.req.services[0]!.slug).toMatchObject({
      kind: "github",
      owner: "acme",
      repo: "api",
      ref: "main",
    });

    const busy = await call(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/other"] } });
    expect(busy.status).toBe(409);
    expect(busy.json()).toMatchObject({ error: "project_busy", id, status_url });
    const elsewhere = await call(uds, "POST", "/deploy", {
      body: { project: "other", slugs: ["gh:acme/other"] },
    });
    expect(elsewhere.status).toBe(202);
    (await tp.nextDeploy()).release();

    expect((await call(uds, "GET", status_url)).json()).toMatchObject({
      id,
      status: "running",
      kind: "deploy",
    });
    d.release();
    await new Promise((res) => setTimeout(res, 50));
    const done = (await call(uds, "GET", status_url)).json();
    expect(done).toMatchObject({ status: "succeeded", project: "demo" });
    expect(done.result.services).toHaveLength(2);

    const logs = await sse(uds, "GET", logs_url);
    await logs.ended;
    expect(logs.events.map((e) => e.event)).toEqual([
      "stage",
      "stage",
      "log",
      "log",
      "stage",
      "stage",
      "result",
    ]);
    expect(logs.events.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(logs.events.at(-1)!.data.result).toEqual(done.result);

    const list = (await call(uds, "GET", "/deployments")).json();
    expect(list.map((x: { id: string }) => x.id)).toContain(id);
    // the lock is free again
    const again = await call(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } });
    expect(again.status).toBe(202);
    (await tp.nextDeploy()).release();
  });

  it("Accept: text/event-stream streams the deploy itself until the result (TCP, service key)", async () => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const s = await sse(tcp, "POST", "/deploy", {
      body: { slugs: ["gh:acme/api"] },
      headers: svcKey(),
    });
    expect(s.status).toBe(200);
    expect(s.headers["content-type"]).toMatch(/^text\/event-stream/);
    const hello = await s.waitFor((e) => e.event === "deployment");
    expect(hello.data).toMatchObject({
      project: "demo",
      status_url: `/deployments/${hello.data.id}`,
    });
    await s.waitFor((e) => e.event === "log");
    expect(s.events.some((e) => e.event === "result")).toBe(false); // still running: truly streamed
    (await tp.nextDeploy()).release();
    const result = await s.waitFor((e) => e.event === "result");
    expect(result.data.result).toMatchObject({
      project: "demo",
      services: [{ name: "api", status: "SERVING" }],
    });
    await s.ended;
  });

  it("GET /deployments/:id/logs replays then follows; Last-Event-ID resumes", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const { id } = (
      await call(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } })
    ).json();
    const d = await tp.nextDeploy();
    const follow = await sse(uds, "GET", `/deployments/${id}/logs`);
    await follow.waitFor((e) => e.event === "log");
    const replayed = follow.events.length;
    expect(replayed).toBe(2); // queued + first terraform line
    d.onEvent(logEvent("terraform", "docker_container.app: Creating..."));
    await follow.waitFor((e) => e.data?.line === "docker_container.app: Creating...");
    d.release();
    await follow.ended;
    expect(follow.events.at(-1)!.event).toBe("result");
    const resumed = await sse(uds, "GET", `/deployments/${id}/logs`, {
      headers: { "last-event-id": "3" },
    });
    await resumed.ended;
    expect(resumed.events[0]!.id).toBe(4);
    expect(resumed.events.at(-1)!.event).toBe("result");
  });

  it("a pipeline that throws: status failed, terminal `error` event with message and hint", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const s = await sse(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } });
    (await tp.nextDeploy()).fail(
      new IacError("terraform apply failed", "see the terraform output above"),
    );
    const err = await s.waitFor((e) => e.event === "error");
    expect(err.data).toMatchObject({
      message: "terraform apply failed",
      hint: "see the terraform output above",
    });
    await s.ended;
    const hello = s.events[0]!;
    expect((await call(uds, "GET", `/deployments/${hello.data.id}`)).json()).toMatchObject({
      status: "failed",
      error: { message: "terraform apply failed" },
    });
  });

  it("POST /deployments/:id/cancel aborts the pipeline; status cancelled; 409 once finished", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const s = await sse(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } });
    const d = await tp.nextDeploy();
    const id = s.events[0]!.data.id as string;
    const r = await call(uds, "POST", `/deployments/${id}/cancel`);
    expect(r.status).toBe(202);
    expect(d.signal?.aborted).toBe(true);
    await s.ended;
    expect(s.events.at(-1)!.event).toBe("error");
    expect((await call(uds, "GET", `/deployments/${id}`)).json().status).toBe("cancelled");
    expect((await call(uds, "POST", `/deployments/${id}/cancel`)).status).toBe(409);
  });

  it("a service that does not serve marks the deployment failed (report still there)", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const { id } = (
      await call(uds, "POST", "/deploy", {
        body: { services: [{ slug: "gh:acme/api", name: "broken" }] },
      })
    ).json();
    (await tp.nextDeploy()).release();
    await new Promise((r) => setTimeout(r, 50));
    const rec = (await call(uds, "GET", `/deployments/${id}`)).json();
    expect(rec.status).toBe("failed");
    expect(rec.result.services[0]).toMatchObject({ name: "broken", status: "NOT_SERVING" });
  });

  it("a user access token with an admin role can deploy over TCP; a non-admin gets 403", async () => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const admin = await sb.token({ appMetadata: { roles: ["iac-admin"] } });
    const ok = await call(tcp, "POST", "/deploy", {
      body: { slugs: ["gh:acme/api"] },
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(ok.status).toBe(202);
    (await tp.nextDeploy()).release();
    const viewer = await sb.token({ appMetadata: { roles: ["viewer"] } });
    const no = await call(tcp, "POST", "/deploy", {
      body: { slugs: ["gh:acme/x"] },
      headers: { authorization: `Bearer ${viewer}` },
    });
    expect(no.status).toBe(403);
    expect(no.headers["www-authenticate"]).toMatch(/insufficient_scope/);
  });
});

describe("validation", () => {
  it.each([
    ["empty body", {}, "slugs"],
    ["both forms", { slugs: ["gh:a/b"], services: [{ slug: "gh:a/c" }] }, "slugs"],
    ["empty list", { slugs: [] }, "slugs"],
    ["bad slug", { slugs: ["gh:acme/api", "acme/api"] }, "slugs.1"],
    ["too many slugs", { slugs: Array.from({ length: 51 }, (_, i) => `gh:acme/r${i}`) }, "slugs"],
    ["unknown key", { slugs: ["gh:a/b"], extra: 1 }, ""],
    ["bad project", { project: "Bad_Name", slugs: ["gh:a/b"] }, "project"],
    ["bad service name", { services: [{ slug: "gh:a/b", name: "UPPER" }] }, "services.0.name"],
    ["bad env name", { services: [{ slug: "gh:a/b", env: { "1X": "v" } }] }, "services.0.env.1X"],
    ["port out of range", { services: [{ slug: "gh:a/b", port: 70000 }] }, "services.0.port"],
    ["reserved port", { services: [{ slug: "gh:a/b", port: 15001 }] }, "services.0.port"],
    ["ref git refuses", { slugs: ["gh:a/b#v1..2"] }, "slugs.0"],
    [
      "reserved env name",
      { services: [{ slug: "gh:a/b", env: { iac_listen: "x" } }] },
      "services.0.env.iac_listen",
    ],
  ])("400 naming the field: %s", async (name, body, field) => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const r = await call(tcp, "POST", "/deploy", { body, headers: svcKey() });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: "invalid_request", field });
    expect(r.json().message.length).toBeGreaterThan(10);
    if (name === "bad slug") expect(r.json().hint).toBe("did you mean gh:acme/api?");
    expect(tp.pending).toHaveLength(0);
  });

  it.each([
    ["duplicate names", { slugs: ["gh:a/api", "gh:b/api"] }, 422, "unprocessable", "slugs.1"],
    [
      "env names that differ only in case",
      { services: [{ slug: "gh:a/b", env: { Path: "a", PATH: "b" } }] },
      422,
      "unprocessable",
      "services.0.env",
    ],
    ["file: slug over TCP", { slugs: ["file:/etc"] }, 403, "forbidden", "slugs.0"],
  ])("schema-valid but refused: %s", async (_name, body, status, error, field) => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const r = await call(tcp, "POST", "/deploy", { body, headers: svcKey() });
    expect(r.status).toBe(status);
    expect(r.json()).toMatchObject({ error, field });
    expect(tp.pending).toHaveLength(0);
  });

  it("port: reaches the pipeline (the port the app serves its peers on)", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const r = await call(uds, "POST", "/deploy", {
      body: { services: [{ slug: "gh:acme/api", port: 8080 }, { slug: "gh:acme/worker" }] },
    });
    expect(r.status).toBe(202);
    const d = await tp.nextDeploy();
    expect(d.req.services.map((s) => s.port)).toEqual([8080, undefined]);
  });

  it("the repos file's build, telemetry, labels and entrypoint {process} reach the pipeline; iac's own labels are refused", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const r = await call(uds, "POST", "/deploy", {
      body: {
        services: [
          {
            slug: "gh:acme/api",
            build: "dockerfile",
            telemetry: "off",
            labels: { "com.acme.team": "payments" },
          },
          { slug: "gh:acme/worker", entrypoint: { process: "worker" } },
        ],
      },
    });
    expect(r.status, JSON.stringify(r.json())).toBe(202);
    const d = await tp.nextDeploy();
    expect(d.req.services[0]).toMatchObject({
      build: "dockerfile",
      telemetry: "off",
      labels: { "com.acme.team": "payments" },
    });
    expect(d.req.services[1]).toMatchObject({ process: "worker" });
    d.release();
    for (const [body, field] of [
      [{ slug: "gh:acme/api", labels: { "io.iac.slug": "x" } }, /labels/],
      [{ slug: "gh:acme/api", build: "docker" }, /build/],
      [{ slug: "gh:acme/api", entrypoint: { process: "a b" } }, /entrypoint/],
    ] as const) {
      const bad = await call(uds, "POST", "/deploy", { body: { services: [body] } });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.json())).toMatch(field);
    }
  });

  it("file: slugs are accepted over the Unix socket (a local user)", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const dir = tmp();
    const r = await call(uds, "POST", "/deploy", { body: { slugs: [`file:${dir}`] } });
    expect(r.status).toBe(202);
    (await tp.nextDeploy()).release();
  });

  it("413 over the body limit, 400 on invalid JSON, 415 on a non-JSON body", async () => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const big = await call(tcp, "POST", "/deploy", {
      raw: JSON.stringify({ slugs: ["gh:a/b"], pad: "x".repeat(70_000) }),
      headers: svcKey(),
    });
    expect(big.status).toBe(413);
    expect(big.json().error).toBe("body_too_large");
    const bad = await call(tcp, "POST", "/deploy", { raw: "{nope", headers: svcKey() });
    expect(bad.status).toBe(400);
    const text = await call(tcp, "POST", "/deploy", {
      raw: "slugs=gh:a/b",
      headers: { ...svcKey(), "content-type": "application/x-www-form-urlencoded" },
    });
    expect(text.status).toBe(415);
  });

  it("bad ids and queries: 400; unknown deployment: 404", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    expect((await call(uds, "GET", "/deployments/not-a-uuid")).status).toBe(400);
    expect((await call(uds, "GET", `/deployments/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await call(uds, "GET", "/services/api/logs?tail=-1")).json()).toMatchObject({
      field: "tail",
    });
    expect((await call(uds, "GET", "/nope")).status).toBe(404);
  });
});

describe("releases, rollback, status, records that survive a restart", () => {
  it("GET /releases and GET /status are 200 with [] when empty", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const r = await call(uds, "GET", "/releases?project=nothing");
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ project: "nothing", releases: [] });
    const st = await call(uds, "GET", "/status");
    expect(st.status).toBe(200);
    expect(st.json()).toEqual({ projects: [] });
  });

  it("a deploy records the API principal; POST /rollback streams like /deploy", async () => {
    const tp = testPipeline();
    const { tcp, uds } = await start(tp.pipeline);
    for (const slug of ["gh:acme/api#v1", "gh:acme/api#v2"]) {
      const d = await call(tcp, "POST", "/deploy", { body: { slugs: [slug] }, headers: svcKey() });
      expect(d.status).toBe(202);
      (await tp.nextDeploy()).release();
      await new Promise((r) => setTimeout(r, 50));
    }
    const rel = (await call(uds, "GET", "/releases")).json() as {
      releases: { number: number; principal: string }[];
    };
    expect(rel.releases.map((x) => [x.number, x.principal])).toEqual([
      [1, "service_role"],
      [2, "service_role"],
    ]);
    const stream = await sse(uds, "POST", "/rollback", { body: { to: 1 } });
    await stream.ended;
    expect(stream.events.map((e) => e.event)).toEqual(
      expect.arrayContaining(["deployment", "stage", "result"]),
    );
    const result = stream.events.find((e) => e.event === "result")!;
    expect(result.data).toMatchObject({ result: { rolled_back_to: 1 } });
    const after = (await call(uds, "GET", "/releases")).json() as {
      releases: { number: number; kind: string; principal: string }[];
    };
    expect(after.releases.at(-1)).toMatchObject({
      number: 3,
      kind: "rollback",
      principal: "socket",
    });
    const bad = await call(uds, "POST", "/rollback", { body: { to: "x" } });
    expect(bad.status).toBe(400);
  });

  it("deployment records survive a restart of the server", async () => {
    const stateDir = path.join(tmp(), "state");
    const tp = testPipeline();
    const first = await start(tp.pipeline, { IAC_STATE_DIR: stateDir });
    const d = await call(first.uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } });
    const id = (d.json() as { id: string }).id;
    (await tp.nextDeploy()).release();
    await first.server.deployments.get(id)!.done;
    await first.server.close();

    const second = await start(testPipeline().pipeline, { IAC_STATE_DIR: stateDir });
    const rec = await call(second.uds, "GET", `/deployments/${id}`);
    expect(rec.status).toBe(200);
    expect(rec.json()).toMatchObject({ id, kind: "deploy", status: "succeeded" });
    const list = (await call(second.uds, "GET", "/deployments")).json() as { id: string }[];
    expect(list.map((x) => x.id)).toContain(id);
    const replay = await sse(second.uds, "GET", `/deployments/${id}/logs`);
    await replay.ended;
    expect(replay.events.map((e) => e.event)).toContain("result");
  });
});

describe("services, destroy, health, openapi", () => {
  it("GET /services, GET /services/:name/logs (SSE), POST /destroy", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const none = await call(uds, "GET", "/services"); // nothing deployed yet: an empty collection
    expect(none.status).toBe(200);
    expect(none.json()).toEqual({ project: "demo", services: [] });
    await call(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } });
    (await tp.nextDeploy()).release();
    await new Promise((r) => setTimeout(r, 50));
    const svc = await call(uds, "GET", "/services");
    expect(svc.json()).toEqual({
      project: "demo",
      services: [{ name: "api", status: "SERVING", phase: "running", port: 20000 }],
    });

    const logs = await sse(uds, "GET", "/services/api/logs?tail=2");
    await logs.ended;
    expect(logs.events.map((e) => e.event)).toEqual(["log", "log", "end"]);
    expect(logs.events[0]!.data).toMatchObject({ msg: "line 0", stream: "stdout" });
    expect((await call(uds, "GET", "/services/nope/logs")).status).toBe(404); // "no service 'nope'"

    const follow = await sse(uds, "GET", "/services/api/logs?follow=1&tail=1");
    await follow.waitFor((e) => e.event === "log");
    follow.close(); // the client leaving aborts the pipeline's stream

    const gone = await call(uds, "POST", "/destroy", { body: {} });
    expect(gone.status).toBe(200);
    expect(gone.json()).toMatchObject({ project: "demo", removed: ["demo-api"] });
  });

  it("POST /destroy answers 409 while a deploy of the project runs", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline);
    const { id } = (
      await call(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } })
    ).json();
    const d = await tp.nextDeploy();
    const r = await call(uds, "POST", "/destroy", { body: { project: "demo" } });
    expect(r.status).toBe(409);
    expect(r.json().id).toBe(id);
    d.release();
  });

  it("GET /health needs no token; GET /openapi.json describes every route", async () => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const h = await call(tcp, "GET", "/health");
    expect(h.status).toBe(200);
    expect(h.json()).toMatchObject({ ok: true, auth: { configured: true } });
    const doc = (await call(tcp, "GET", "/openapi.json")).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/deploy",
        "/deployments",
        "/deployments/{id}",
        "/deployments/{id}/logs",
        "/deployments/{id}/cancel",
        "/destroy",
        "/health",
        "/openapi.json",
        "/releases",
        "/rollback",
        "/services",
        "/status",
        "/services/{name}/logs",
      ].sort(),
    );
    const body = doc.paths["/deploy"].post.requestBody.content["application/json"].schema;
    expect(body.properties.slugs.maxItems).toBe(50);
    expect(body.oneOf).toEqual([{ required: ["slugs"] }, { required: ["services"] }]);
  });
});

describe("the contract (src/api/contract.ts)", () => {
  it("405 with Allow for a method a known path does not have; 404 for unknown paths", async () => {
    const tp = testPipeline();
    const { tcp } = await start(tp.pipeline);
    const del = await call(tcp, "DELETE", "/deployments");
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe("GET, HEAD");
    expect(del.json()).toMatchObject({ error: "method_not_allowed" });
    const get = await call(tcp, "GET", `/deployments/${crypto.randomUUID()}/cancel`);
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe("POST");
    expect((await call(tcp, "PUT", "/nope")).status).toBe(401); // unknown: auth first, then 404
    expect((await call(tcp, "PUT", "/nope", { headers: svcKey() })).status).toBe(404);
  });

  it("Docker unreachable: 503 docker_unavailable naming the socket and the fix, not a bare 500", async () => {
    const tp = testPipeline();
    tp.pipeline.health = async () => {
      throw Object.assign(new Error("connect ENOENT /var/run/docker.sock"), {
        code: "ENOENT",
        syscall: "connect",
        address: "/var/run/docker.sock",
      });
    };
    const { uds } = await start(tp.pipeline);
    const r = await call(uds, "GET", "/services");
    expect(r.status).toBe(503);
    expect(r.headers["retry-after"]).toBe("5");
    expect(r.json()).toMatchObject({
      error: "docker_unavailable",
      message: expect.stringMatching(/Docker engine not reachable at \/var\/run\/docker\.sock/),
      hint: expect.stringMatching(/is Docker running\?/),
    });
  });

  it("every declared route is registered, and the document declares every route's answers", async () => {
    const tp = testPipeline();
    const { server } = await start(tp.pipeline);
    for (const r of ROUTES)
      expect(server.app.hasRoute({ method: r.method, url: r.path })).toBe(true);
    const doc = openApiDocument() as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses), `${m} ${p}`).toContain("400");
        if (p !== "/health" && p !== "/openapi.json")
          expect(Object.keys(op.responses), `${m} ${p}`).toEqual(
            expect.arrayContaining(["401", "403", "429", "503"]),
          );
      }
    }
  });
});

describe("Unix socket", () => {
  it("mode 0600, no token needed; TCP needs one", async () => {
    const tp = testPipeline();
    const { uds, tcp, socketPath } = await start(tp.pipeline);
    const st = statSync(socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await call(uds, "GET", "/deployments")).status).toBe(200);
    expect((await call(tcp, "GET", "/deployments")).status).toBe(401);
    expect((await call(tcp, "GET", "/deployments", { headers: svcKey() })).status).toBe(200);
  });

  it("IAC_SOCKET_REQUIRE_AUTH=1 requires the bearer on the socket too", async () => {
    const tp = testPipeline();
    const { uds } = await start(tp.pipeline, { IAC_SOCKET_REQUIRE_AUTH: "1" });
    expect((await call(uds, "GET", "/deployments")).status).toBe(401);
    expect((await call(uds, "GET", "/deployments", { headers: svcKey() })).status).toBe(200);
    expect((await call(uds, "GET", "/health")).status).toBe(200);
  });

  it("auth not configured: TCP fails closed (503), the socket still works", async () => {
    const tp = testPipeline();
    const socketPath = path.join(tmp(), "s.sock");
    const dir = tmp();
    const config = loadConfig(
      { IAC_LOG_LEVEL: "silent", IAC_STATE_DIR: path.join(dir, "state") },
      {},
      dir,
    );
    const server = await createServer({
      config,
      pipeline: tp.pipeline,
      logger: pino({ level: "silent" }),
    });
    servers.push(server);
    const bound = await server.listen({ http: { host: "127.0.0.1", port: 0 }, socketPath });
    const r = await call({ base: bound.httpUrl }, "GET", "/services", { headers: svcKey() });
    expect(r.status).toBe(503);
    expect(r.json().error).toBe("auth_not_configured");
    expect((await call({ socketPath }, "GET", "/deployments")).status).toBe(200);
  });

  it("a stale socket is replaced; a live one and a non-socket file are refused; removed on close", async () => {
    const dir = tmp();
    const stale = path.join(dir, "stale.sock");
    // A socket file nobody listens on (what a crashed server leaves behind).
    execFileSync("python3", [
      "-c",
      `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(stale)})`,
    ]);
    expect(lstatSync(stale).isSocket()).toBe(true);
    const tp = testPipeline();
    const mk = () =>
      createServer({ config: cfg(), pipeline: tp.pipeline, logger: pino({ level: "silent" }) });
    const a = await mk();
    await a.listen({ http: false, socketPath: stale });
    expect((await call({ socketPath: stale }, "GET", "/deployments")).status).toBe(200);

    const b = await mk();
    await expect(b.listen({ http: false, socketPath: stale })).rejects.toThrow(
      /another server is listening/,
    );
    await b.close();

    const file = path.join(dir, "file.sock");
    writeFileSync(file, "precious");
    const c = await mk();
    await expect(c.listen({ http: false, socketPath: file })).rejects.toThrow(/not a socket/);
    expect(statSync(file).isFile()).toBe(true);
    await c.close();

    await a.close();
    expect(existsSync(stale)).toBe(false);
  });

  it("a missing folder is refused with a hint", async () => {
    const tp = testPipeline();
    const s = await createServer({
      config: cfg(),
      pipeline: tp.pipeline,
      logger: pino({ level: "silent" }),
    });
    await expect(
      s.listen({ http: false, socketPath: path.join(tmp(), "no/such/dir.sock") }),
    ).rejects.toThrow(/does not exist/);
    await s.close();
  });

  it("shutdown ends open event streams", async () => {
    const tp = testPipeline();
    const { server, uds } = await start(tp.pipeline);
    const s = await sse(uds, "POST", "/deploy", { body: { slugs: ["gh:acme/api"] } });
    await tp.nextDeploy();
    servers.splice(servers.indexOf(server), 1);
    await server.close(); // grace 100 ms, then the deploy is aborted
    await s.ended;
    expect(s.events.at(-1)!.event).toBe("error");
  });
});

describe("gRPC ControlPlane on a Unix socket", () => {
  function deployCall(
    client: ControlPlaneClient,
    slugs: string[],
    md = new Metadata(),
  ): Promise<DeployResult> {
    return new Promise((resolve, reject) =>
      client.deploy({ slugs, project: "" }, md, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  it("HealthCheck and Deploy share the registry; busy -> ABORTED, bad slug -> INVALID_ARGUMENT", async () => {
    const tp = testPipeline();
    const grpcSocketPath = path.join(tmp(), "cp.grpc.sock");
    const server = await createServer({
      config: cfg(),
      pipeline: tp.pipeline,
      logger: pino({ level: "silent" }),
    });
    servers.push(server);
    const bound = await server.listen({
      http: false,
      socketPath: path.join(tmp(), "h.sock"),
      grpcSocketPath,
    });
    expect(bound.grpcSocketPath).toBe(grpcSocketPath);
    expect(statSync(grpcSocketPath).mode & 0o777).toBe(0o600);
    const client = new ControlPlaneClient(`unix:${grpcSocketPath}`, credentials.createInsecure());
    try {
      const health = await new Promise<{ status: number; message: string }>((resolve, reject) =>
        client.healthCheck({}, (err, res) => (err ? reject(err) : resolve(res))),
      );
      expect(health.status).toBe(HealthStatus_Status.SERVING);
      expect(health.message).toMatch(/docker: ok/);

      const pending = deployCall(client, ["gh:acme/api"]);
      const d = await tp.nextDeploy();
      const busy = await deployCall(client, ["gh:acme/other"]).catch((e: ServiceError) => e);
      expect((busy as ServiceError).code).toBe(grpcStatus.ABORTED);
      const running = (await call({ socketPath: bound.socketPath }, "GET", "/deployments")).json();
      expect(running[0]).toMatchObject({ status: "running", project: "demo" });
      d.release();
      const result = await pending;
      expect(result).toMatchObject({
        project: "demo",
        services: [{ name: "api", status: "SERVING", port: 20000 }],
      });

      const bad = await deployCall(client, ["acme/api"]).catch((e: ServiceError) => e);
      expect((bad as ServiceError).code).toBe(grpcStatus.INVALID_ARGUMENT);
      expect((bad as ServiceError).details).toMatch(/slugs.0/);
    } finally {
      client.close();
    }
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    expect(existsSync(grpcSocketPath)).toBe(false);
  });

  it("IAC_SOCKET_REQUIRE_AUTH=1: a bearer in the metadata is required", async () => {
    const tp = testPipeline();
    const grpcSocketPath = path.join(tmp(), "cp.grpc.sock");
    const server = await createServer({
      config: cfg({ IAC_SOCKET_REQUIRE_AUTH: "1" }),
      pipeline: tp.pipeline,
      logger: pino({ level: "silent" }),
    });
    servers.push(server);
    await server.listen({ http: false, socketPath: false, grpcSocketPath });
    const client = new ControlPlaneClient(`unix:${grpcSocketPath}`, credentials.createInsecure());
    try {
      const denied = await deployCall(client, ["gh:acme/api"]).catch((e: ServiceError) => e);
      expect((denied as ServiceError).code).toBe(grpcStatus.UNAUTHENTICATED);
      const md = new Metadata();
      md.set("authorization", `Bearer ${sb.secretKey}`);
      const pending = deployCall(client, ["gh:acme/api"], md);
      (await tp.nextDeploy()).release();
      expect((await pending).services).toHaveLength(1);
    } finally {
      client.close();
    }
  });
});

describe("iac serve (the CLI)", () => {
  it("binds port 0 and the socket, serves /health on both, and removes the socket on SIGTERM", async () => {
    const dir = tmp();
    const socketPath = path.join(dir, "serve.sock");
    const env: Record<string, string | undefined> = {
      ...process.env,
      IAC_HTTP_ADDR: "127.0.0.1:0",
      IAC_SOCKET_PATH: socketPath,
      IAC_LOG_LEVEL: "info",
    };
    delete env.SUPABASE_URL;
    delete env.SUPABASE_SERVICE_ROLE_KEY;
    const child = spawn(process.execPath, [path.join(ROOT, "bin/iac.js"), "serve"], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`iac serve did not start:\n${stderr}`)),
          30_000,
        );
        child.stderr.on("data", (c: string) => {
          stderr += c;
          const m = /iac serve: listening on (http:\/\/127\.0\.0\.1:\d+).*\n/.exec(stderr);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.on("exit", () => reject(new Error(`iac serve exited:\n${stderr}`)));
      });
      expect(stderr).toMatch(/auth is NOT configured/);
      expect(statSync(socketPath).mode & 0o777).toBe(0o600);
      const grpcSocket = path.join(dir, "serve.grpc.sock");
      expect(stderr).toContain(`gRPC unix:${grpcSocket}`);
      expect(statSync(grpcSocket).mode & 0o777).toBe(0o600);
      for (const t of [{ base: url }, { socketPath }]) {
        const h = await call(t, "GET", "/health");
        expect([200, 503]).toContain(h.status);
        expect(h.json()).toHaveProperty("checks");
      }
      const denied = await call({ base: url }, "GET", "/services");
      expect(denied.status).toBe(503);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(existsSync(socketPath)).toBe(false);
      expect(existsSync(grpcSocket)).toBe(false);
      expect(stderr).toMatch(/SIGTERM: shutting down/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
