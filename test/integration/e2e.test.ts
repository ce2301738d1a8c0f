// The mission end to end, through the CLI, on the default path: every service behind an Envoy
// sidecar (IAC_SIDECAR=envoy). A "hello-main" repo served by the local GitHub stand-in ->
// iac plan -> iac deploy (real docker build, real terraform apply with the docker provider, the
// Envoy image the CLI's preflight found, pulled or built) -> HealthCheck SERVING over mTLS
// through the sidecar -> iac logs -> a redeploy changes nothing -> a broken repo fails alone ->
// iac destroy leaves nothing. Never skipped: without an Envoy image this FAILS with the reason.
// IAC_SIDECAR=none has its own, lighter suite below (same fixture repo, so the app image is
// built once for both).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healthCheck, runtimeClient } from "../../src/runtime/client.js";
import { HealthStatus_Status } from "../../src/gen/controlplane.js";
import {
  docker,
  type E2eFixtures,
  type E2eProject,
  HELLO_MAIN,
  startE2eProject,
  startFixtures,
} from "../helpers/e2e-project.js";
import { runtimeImages } from "../helpers/images.js";
import type { ImageChoice } from "../../src/image/runtime-images.js";

let fixtures: E2eFixtures;

beforeAll(async () => {
  fixtures = await startFixtures({
    "acme/hello-main": HELLO_MAIN,
    "acme/broken": { "README.md": "# nothing to run here\n" },
  });
});

afterAll(async () => {
  await fixtures?.close();
});

describe("iac deploy end to end with Envoy sidecars (the default path)", () => {
  let p: E2eProject;
  let images: { base: ImageChoice; envoy: ImageChoice };
  let reposFile: string;
  let port: number;

  beforeAll(async () => {
    // Same order and code as the CLI: present -> docker pull -> local substitute. Throws
    // (failing every test below with the reason) when no Envoy image can be had.
    images = await runtimeImages();
    p = await startE2eProject(fixtures, { prefix: "e2e", env: { IAC_SIDECAR: "envoy" } });
    reposFile = await p.reposFile("repos.yaml", "services:\n  - slug: gh:acme/hello-main#main\n");
  });

  afterAll(async () => {
    await p?.cleanup();
  });

  it("iac plan shows what would be created, and creates nothing", async () => {
    const { stdout } = await p.iac("plan", "--file", reposFile, "--output", "json");
    const doc = JSON.parse(stdout) as {
      plan: { changes: boolean; add: number };
      services: { name: string }[];
    };
    expect(doc.plan.changes).toBe(true);
    // app container + envoy container (images are not terraform resources; the network is
    // shared, created outside the project's state)
    expect(doc.plan.add).toBe(2);
    expect(doc.services.map((s) => s.name)).toEqual(["hello-main"]);
    expect(await p.containers(true)).toEqual([]);
  });

  it("deploys hello-main with its Envoy sidecar, says which images it used, reports SERVING", async () => {
    const { stdout, stderr } = await p.iac("deploy", "--file", reposFile, "--output", "json");
    // The preflight names the images and why (present / pulled / pull failed -> substitute).
    expect(stderr).toContain(`base image ${images.base.image}`);
    expect(stderr).toContain(`envoy image ${images.envoy.image}`);
    expect(stderr).toMatch(/envoy image \S+.*: (present|pulled|pull of \S+ failed)/);
    const doc = JSON.parse(stdout) as {
      project: string;
      services: {
        name: string;
        status: string;
        port: number;
        commit: string;
        entrypoint: { kind: string };
      }[];
    };
    expect(doc.project).toBe(p.project);
    expect(doc.services).toHaveLength(1);
    const [svc] = doc.services;
    expect(svc).toMatchObject({ name: "hello-main", status: "SERVING" });
    expect(svc!.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(svc!.entrypoint.kind).toBe("python-main-function");
    port = svc!.port;

    const containers = await p.containers();
    expect(containers.map((c) => c.Names[0]).sort()).toEqual([
      `/${p.project}-hello-main`,
      `/${p.project}-hello-main-envoy`,
    ]);
    const app = containers.find((c) => c.Names[0] === `/${p.project}-hello-main`)!;
    expect(app.Labels["io.iac.commit"]).toBe(svc!.commit);
    // Only the mTLS port is published, and only on loopback; the app's 50051 never is.
    const published = app.Ports.filter((x) => x.PublicPort !== undefined);
    expect(published).toEqual([
      expect.objectContaining({ IP: "127.0.0.1", PrivatePort: 15000, PublicPort: port }),
    ]);
    const appInfo = await docker.getContainer(app.Id).inspect();
    expect(appInfo.Config.User).toBe("10001:10001");
    expect(appInfo.HostConfig.CapDrop).toContain("ALL");
    expect(appInfo.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    // With Envoy the app never sees a key: no cert mount on the app container.
    expect(appInfo.Mounts.map((m) => m.Destination)).not.toContain("/etc/iac/certs");
  });

  it("the sidecar runs the ensured Envoy image: non-root, read-only, no capabilities, in the app's netns", async () => {
    const [app, envoy] = await Promise.all(
      ["", "-envoy"].map((s) => docker.getContainer(`${p.project}-hello-main${s}`).inspect()),
    );
    const want = await docker.getImage(images.envoy.image).inspect();
    expect(envoy!.Image).toBe(want.Id);
    expect(envoy!.State.Running).toBe(true);
    expect(envoy!.Config.User).toBe("101:101");
    expect(envoy!.HostConfig.ReadonlyRootfs).toBe(true);
    expect(envoy!.HostConfig.CapDrop).toContain("ALL");
    expect(envoy!.HostConfig.SecurityOpt).toContain("no-new-privileges:true");
    expect(envoy!.HostConfig.NetworkMode).toBe(`container:${app!.Id}`);
    const mounts = Object.fromEntries(envoy!.Mounts.map((m) => [m.Destination, m.RW]));
    expect(mounts).toEqual({ "/etc/envoy/envoy.yaml": false, "/etc/iac/certs": false });
  });

  it("answers HealthCheck SERVING over mTLS through Envoy, and refuses a wrong server identity", async () => {
    const { stdout } = await p.iac("health", "--output", "json");
    const doc = JSON.parse(stdout) as {
      services: { name: string; status: string; port: number }[];
    };
    expect(doc.services[0]).toMatchObject({ name: "hello-main", status: "SERVING", port });

    const certs = p.controlPlaneCerts();
    const client = runtimeClient({ host: "127.0.0.1", port, serverName: "hello-main" }, certs);
    try {
      expect((await healthCheck(client, 5_000)).status).toBe(HealthStatus_Status.SERVING);
    } finally {
      client.close();
    }
    // Expecting another service's name must fail server identity verification.
    const wrong = runtimeClient({ host: "127.0.0.1", port, serverName: "someone-else" }, certs);
    try {
      await expect(healthCheck(wrong, 3_000)).rejects.toThrow();
    } finally {
      wrong.close();
    }
    // And the calls really went through Envoy: its inbound HTTP connection manager counted them
    // (metrics listener on the service's loopback, read from inside its network namespace).
    const stats = await p.inNetns(
      `${p.project}-hello-main`,
      images.base.image,
      "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9901/stats/prometheus', timeout=5).read().decode())",
    );
    const m =
      /envoy_http_downstream_rq_total\{envoy_http_conn_manager_prefix="inbound"\} (\d+)/.exec(
        stats,
      );
    expect(m, "inbound request counter in Envoy's stats").not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(2);
  });

  it("iac logs shows main()'s output", async () => {
    const { stdout } = await p.iac("logs", "hello-main", "--tail", "50");
    expect(stdout).toContain("hello from main()");
    expect(stdout).toContain("to stderr too");
  });

  it("a second deploy of the same file recreates nothing", async () => {
    const before = await p.containers();
    const { stdout, stderr } = await p.iac("deploy", "--file", reposFile, "--output", "json");
    expect(JSON.parse(stdout).services[0].status).toBe("SERVING");
    expect(stderr).toContain("no changes");
    const after = await p.containers();
    expect(after.map((c) => c.Id).sort()).toEqual(before.map((c) => c.Id).sort());
  });

  it("a broken repo fails alone: exit 1, the others keep serving untouched", async () => {
    const before = await p.containers();
    const both = await p.reposFile(
      "repos-broken.yaml",
      "- gh:acme/hello-main#main\n- gh:acme/broken\n",
    );
    const err = (await p
      .iac("deploy", "--file", both, "--output", "json")
      .catch((e: unknown) => e)) as {
      code: number;
      stdout: string;
    };
    expect(err.code).toBe(1);
    const doc = JSON.parse(err.stdout) as {
      services: { name: string; status: string; error?: string }[];
    };
    expect(doc.services.find((s) => s.name === "hello-main")).toMatchObject({ status: "SERVING" });
    const bad = doc.services.find((s) => s.name === "broken")!;
    expect(bad.status).toBe("FAILED");
    expect(bad.error).toMatch(/main\.py/); // lists what was looked for
    const after = await p.containers();
    expect(after.map((c) => c.Id).sort()).toEqual(before.map((c) => c.Id).sort());
  });

  it("iac destroy removes every container and the network of the project", async () => {
    await p.iac("destroy", "--yes");
    expect(await p.containers(true)).toEqual([]);
    const nets = await docker.listNetworks({ filters: { name: [p.network] } });
    expect(nets.filter((n) => n.Name === p.network)).toEqual([]);
  });
});

describe("iac deploy end to end with IAC_SIDECAR=none (lighter)", () => {
  let p: E2eProject;

  beforeAll(async () => {
    p = await startE2eProject(fixtures, { prefix: "e2enone", env: { IAC_SIDECAR: "none" } });
  });

  afterAll(async () => {
    await p?.cleanup();
  });

  it("deploys without a sidecar: the runner serves mTLS on 15000 itself, SERVING, logs", async () => {
    const file = await p.reposFile("repos.yaml", "- gh:acme/hello-main#main\n");
    const { stdout, stderr } = await p.iac("deploy", "--file", file, "--output", "json");
    expect(stderr).toMatch(/base image \S+.*: /);
    expect(stderr).not.toMatch(/envoy image/); // no sidecar, no Envoy image needed
    const doc = JSON.parse(stdout) as {
      services: { name: string; status: string; port: number }[];
    };
    expect(doc.services).toEqual([
      expect.objectContaining({ name: "hello-main", status: "SERVING" }),
    ]);

    const containers = await p.containers();
    expect(containers.map((c) => c.Names[0])).toEqual([`/${p.project}-hello-main`]);
    const app = await docker.getContainer(containers[0]!.Id).inspect();
    expect(app.Config.User).toBe("10001:10001");
    expect(app.HostConfig.CapDrop).toContain("ALL");
    // The runner terminates mTLS, so it gets the cert, read-only.
    expect(app.Mounts.find((m) => m.Destination === "/etc/iac/certs")?.RW).toBe(false);

    const client = runtimeClient(
      { host: "127.0.0.1", port: doc.services[0]!.port, serverName: "hello-main" },
      p.controlPlaneCerts(),
    );
    try {
      expect((await healthCheck(client, 5_000)).status).toBe(HealthStatus_Status.SERVING);
    } finally {
      client.close();
    }
    const logs = await p.iac("logs", "hello-main", "--tail", "20");
    expect(logs.stdout).toContain("hello from main()");
  });
});
