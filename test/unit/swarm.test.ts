// Swarm target pieces that need no engine: repos-file fields, settings, the log demuxer,
// the task image tag, the tfvars Terraform gets.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/kernel/config.js";
import { parseServiceList } from "../../src/intake/repofile.js";
import { taskImageTag } from "../../src/image/task.js";
import { demux } from "../../src/operations/swarm-status.js";
import { swarmNodes } from "../../src/operations/swarm-deploy.js";
import { SWARM_HEALTH, monitorSeconds, swarmVars } from "../../src/stack/swarm.js";

const parse = (doc: unknown) => parseServiceList(doc, "repos.yaml", "/tmp");

describe("repos file: replicas and placement", () => {
  it("reads replicas and placement (a string or a list)", () => {
    const [a, b, c] = parse({
      services: [
        { slug: "gh:o/a", replicas: 3, placement: "node.labels.zone==a" },
        { slug: "gh:o/b", placement: ["node.role != manager", "node.hostname==n2"] },
        "gh:o/c",
      ],
    });
    expect(a).toMatchObject({ name: "a", replicas: 3, placement: ["node.labels.zone==a"] });
    expect(b).toMatchObject({ placement: ["node.role != manager", "node.hostname==n2"] });
    expect(b!.replicas).toBeUndefined();
    expect(c!.placement).toBeUndefined();
  });

  it.each([
    [0, /replicas must be an integer from 1 to 100, got 0/],
    [1.5, /got 1.5/],
    ["2", /got "2"/],
    [101, /got 101/],
  ])("rejects replicas %j naming the entry", (replicas, msg) => {
    expect(() => parse({ services: [{ slug: "gh:o/a", replicas }] })).toThrow(msg);
    expect(() => parse({ services: [{ slug: "gh:o/a", replicas }] })).toThrow(
      /repos\.yaml: entry 1 \(gh:o\/a\)/,
    );
  });

  it.each([["zone==a"], ["node.labels.zone=a"], ["node.labels.x==$(id)"], [""]])(
    "rejects the constraint %j",
    (c) => {
      expect(() => parse({ services: [{ slug: "gh:o/a", placement: [c] }] })).toThrow(
        /is not of the form node\.<attribute> ==\|!= <value>/,
      );
    },
  );

  it("rejects a placement that is not a string list", () => {
    expect(() => parse({ services: [{ slug: "gh:o/a", placement: { zone: "a" } }] })).toThrow(
      /placement must be a constraint or a list of constraints/,
    );
  });
});

describe("settings", () => {
  it("defaults to the local target and the manager as the only node", () => {
    const c = loadConfig({}, {}, "/tmp");
    expect(c.target).toBe("local");
    expect(c.swarmNodes).toEqual([]);
    expect(swarmNodes({ ...c, dockerHost: "unix:///run/m.sock" })).toEqual(["unix:///run/m.sock"]);
  });

  it("reads IAC_TARGET, IAC_SWARM_NODES and the --target flag", () => {
    const c = loadConfig(
      { IAC_TARGET: "local", IAC_SWARM_NODES: " unix:///run/a.sock, tcp://10.0.0.2:2375 ," },
      { IAC_TARGET: "swarm" },
      "/tmp",
    );
    expect(c.target).toBe("swarm");
    expect(c.swarmNodes).toEqual(["unix:///run/a.sock", "tcp://10.0.0.2:2375"]);
    expect(swarmNodes(c)).toEqual(c.swarmNodes);
  });

  it("rejects bad values naming the variable", () => {
    expect(() => loadConfig({ IAC_TARGET: "k8s" }, {}, "/tmp")).toThrow(/IAC_TARGET="k8s"/);
    expect(() => loadConfig({ IAC_SWARM_NODES: "n1.sock" }, {}, "/tmp")).toThrow(
      /IAC_SWARM_NODES=.*expected Docker endpoints/,
    );
    expect(() => loadConfig({ IAC_REGISTRY: "https://r.example" }, {}, "/tmp")).toThrow(
      /IAC_REGISTRY=/,
    );
  });
});

describe("docker log stream demultiplexing", () => {
  const frame = (kind: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = kind;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };

  it("splits frames into lines with their stream", () => {
    const buf = Buffer.concat([frame(1, "a\nb\n"), frame(2, "err\n"), frame(1, "c")]);
    expect(demux(buf)).toEqual([
      { stream: "stdout", text: "a" },
      { stream: "stdout", text: "b" },
      { stream: "stderr", text: "err" },
      { stream: "stdout", text: "c" },
    ]);
  });

  it("ignores a truncated trailing header", () => {
    expect(demux(Buffer.concat([frame(1, "x\n"), Buffer.from([1, 0, 0])]))).toEqual([
      { stream: "stdout", text: "x" },
    ]);
  });
});

describe("task image and tfvars", () => {
  it("tags the task image by app image, Envoy image and template", () => {
    const t = taskImageTag("api", "sha256:a", "sha256:e", "FROM x");
    expect(t).toMatch(/^iac\/api-task:[0-9a-f]{20}$/);
    expect(taskImageTag("api", "sha256:a", "sha256:e", "FROM x")).toBe(t);
    expect(taskImageTag("api", "sha256:b", "sha256:e", "FROM x")).not.toBe(t);
    expect(taskImageTag("api", "sha256:a", "sha256:f", "FROM x")).not.toBe(t);
    expect(taskImageTag("api", "sha256:a", "sha256:e", "FROM y")).not.toBe(t);
  });

  it("monitors an update at least as long as the health check needs to fail", () => {
    const h = SWARM_HEALTH;
    expect(monitorSeconds()).toBeGreaterThanOrEqual(h.start_period_s + h.interval_s * h.retries);
  });

  it("writes the swarm tfvars from the config", () => {
    const config = loadConfig(
      { DOCKER_HOST: "unix:///run/m.sock", IAC_NETWORK: "p-mesh", IAC_TARGET: "swarm" },
      {},
      "/tmp",
    );
    const vars = swarmVars(config, "p", "/s/ca.pem", {});
    expect(vars).toMatchObject({
      project: "p",
      network_name: "p-mesh",
      docker_host: "unix:///run/m.sock",
      ca_file: "/s/ca.pem",
      health: SWARM_HEALTH,
      services: {},
    });
    expect(vars.allowed_callers).toEqual(["spiffe://iac/control-plane", "spiffe://p/*"]);
  });
});
