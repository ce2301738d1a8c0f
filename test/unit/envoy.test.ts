// The Envoy sidecar config: rendered for a two-service stack, checked strictly against Envoy's
// own API protos (test/helpers/envoy-check.ts), and its security properties pinned one by one.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  DEFAULT_ENVOY_IMAGE,
  ENVOY_PORTS,
  RESERVED_PORTS,
  type EnvoyPeer,
  renderEnvoyConfig,
  renderTemplate,
  writeEnvoyConfig,
} from "../../src/mesh/envoy.js";
import { CONTROL_PLANE_SPIFFE_ID } from "../../src/mesh/pki.js";
import { checkEnvoyConfig } from "../helpers/envoy-check.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

const stack = { project: "demo", network: "iacnet" };
// A three-service stack: api serves peers on 8080, worker on 7000, batch serves none.
const services: EnvoyPeer[] = [
  { name: "api", port: 8080 },
  { name: "worker", port: 7000 },
  { name: "batch" },
];
const render = (name: string) =>
  renderEnvoyConfig({
    ...stack,
    service: name,
    port: services.find((s) => s.name === name)!.port,
    peers: services,
  });
const api = render("api");
const worker = render("worker");
const batch = render("batch");
const cfg: Obj = parseYaml(api);
const batchCfg: Obj = parseYaml(batch);

const listener = (name: string): Obj =>
  cfg.static_resources.listeners.find((l: Obj) => l.name === name);
const cluster = (name: string): Obj =>
  cfg.static_resources.clusters.find((c: Obj) => c.name === name);
const hcm = (name: string): Obj => listener(name).filter_chains[0].filters[0].typed_config;
const inboundTls = (): Obj => listener("inbound").filter_chains[0].transport_socket.typed_config;

describe("proto check (Envoy's own API protos)", () => {
  beforeAll(async () => {
    await checkEnvoyConfig("{}"); // builds / loads the cached descriptor set once
  }, 120_000);

  it("accepts the rendered config of every service of the stack (with and without a port)", async () => {
    for (const text of [api, worker, batch]) {
      const result = await checkEnvoyConfig(text);
      expect(result.errors).toEqual([]);
      expect(result.ok).toBe(true);
    }
  });

  it("accepts a one-service stack (no peers: outbound only has the 404 host)", async () => {
    for (const port of [undefined, 8080]) {
      const result = await checkEnvoyConfig(
        renderEnvoyConfig({ ...stack, service: "solo", port, peers: [] }),
      );
      expect(result.errors).toEqual([]);
    }
  });

  it("fails on a misspelled RBAC field", async () => {
    const bad = await checkEnvoyConfig(api.replace("principal_name:", "principal:"));
    expect(bad.ok).toBe(false);
    expect(bad.errors.join("\n")).toContain("principal");
  });

  it("fails on a misspelled field, also inside a typed_config", async () => {
    const top = await checkEnvoyConfig(api.replace("static_resources:", "static_resource:"));
    expect(top.ok).toBe(false);
    expect(top.errors.join("\n")).toMatch(/static_resource.*unknown|unknown.*static_resource/);
    const nested = await checkEnvoyConfig(
      api.replace("require_client_certificate:", "require_client_cert:"),
    );
    expect(nested.ok).toBe(false);
    expect(nested.errors.join("\n")).toContain("require_client_cert");
  });

  it("fails on an unknown @type", async () => {
    const bad = api.replace(
      "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
      "type.googleapis.com/envoy.extensions.filters.http.router.v3.Rooter",
    );
    const result = await checkEnvoyConfig(bad);
    expect(result.ok).toBe(false);
    expect(result.errors.join("\n")).toContain("Rooter");
  });

  it("fails on a bad enum name and a malformed duration", async () => {
    expect((await checkEnvoyConfig(api.replace("codec_type: HTTP2", "codec_type: HTTP9"))).ok).toBe(
      false,
    );
    expect(
      (await checkEnvoyConfig(api.replace("connect_timeout: 1s", "connect_timeout: 1 second"))).ok,
    ).toBe(false);
  });

  it("applies validate.rules: SNI <= 255 bytes, san_type set, durations > 0, stream limits", async () => {
    const longSni = await checkEnvoyConfig(
      api.replace('sni: "worker"', `sni: "${"a".repeat(256)}"`),
    );
    expect(longSni.errors.join("\n")).toMatch(/sni: must be <= 255 bytes/);
    const noSanType = await checkEnvoyConfig(api.replace(/san_type: URI\n/, "\n"));
    expect(noSanType.errors.join("\n")).toMatch(/san_type: must be set/);
    const zero = await checkEnvoyConfig(api.replace("connect_timeout: 1s", "connect_timeout: 0s"));
    expect(zero.errors.join("\n")).toMatch(/connect_timeout: duration 0s must be > 0s/);
    const streams = await checkEnvoyConfig(
      api.replace(/max_concurrent_streams: 100/, "max_concurrent_streams: 0"),
    );
    expect(streams.errors.join("\n")).toMatch(/max_concurrent_streams: 0 must be >= 1/);
  });

  it("rejects deprecated fields", async () => {
    const dep = api.replace(
      "name: runner\n      type: STATIC\n",
      "name: runner\n      type: STATIC\n      max_requests_per_connection: 100\n",
    );
    expect(dep).not.toBe(api);
    const result = await checkEnvoyConfig(dep);
    expect(result.errors.join("\n")).toMatch(
      /clusters\[0\]\.max_requests_per_connection: is deprecated/,
    );
  });
});

describe("security properties of the rendered config", () => {
  it("inbound listens on 0.0.0.0:15000 with TLS 1.2..1.3, ALPN h2 only, client cert required", () => {
    expect(listener("inbound").address.socket_address).toEqual({
      address: "0.0.0.0",
      port_value: 15000,
    });
    const tls = inboundTls();
    expect(tls["@type"]).toMatch(/DownstreamTlsContext$/);
    expect(tls.require_client_certificate).toBe(true);
    expect(tls.common_tls_context.tls_params.tls_minimum_protocol_version).toBe("TLSv1_2");
    expect(tls.common_tls_context.tls_params.tls_maximum_protocol_version).toBe("TLSv1_3");
    expect(tls.common_tls_context.alpn_protocols).toEqual(["h2"]);
    const suites: string[] = tls.common_tls_context.tls_params.cipher_suites;
    expect(suites.every((s) => s.startsWith("ECDHE-") && /GCM|CHACHA20/.test(s))).toBe(true);
    expect(tls.common_tls_context.tls_certificates[0].private_key.filename).toBe(
      "/etc/iac/certs/key.pem",
    );
  });

  it("inbound verifies callers against the CA and only the control plane + stack SPIFFE ids", () => {
    const vc = inboundTls().common_tls_context.validation_context;
    expect(vc.trusted_ca.filename).toBe("/etc/iac/certs/ca.pem");
    const sans = vc.match_typed_subject_alt_names;
    expect(
      sans.every((s: Obj) => s.san_type === "URI" && Object.keys(s.matcher).join() === "exact"),
    ).toBe(true);
    expect(sans.map((s: Obj) => s.matcher.exact)).toEqual([
      CONTROL_PLANE_SPIFFE_ID,
      "spiffe://demo/api",
      "spiffe://demo/batch",
      "spiffe://demo/worker",
    ]);
  });

  it("a service without a port lets only the control plane through TLS", () => {
    const tls = batchCfg.static_resources.listeners[0].filter_chains[0].transport_socket;
    const sans =
      tls.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names;
    expect(sans).toEqual([{ san_type: "URI", matcher: { exact: CONTROL_PLANE_SPIFFE_ID } }]);
  });

  it("inbound HCM enforces HTTP/2 by codec; runtime + health -> the runner on 127.0.0.1:50051, the rest -> the app's port", () => {
    const h = hcm("inbound");
    expect(h.codec_type).toBe("HTTP2");
    const routes = h.route_config.virtual_hosts[0].routes;
    expect(routes).toEqual([
      {
        match: { prefix: "/iac.controlplane.v1.Runtime/" },
        route: { cluster: "runner", timeout: "0s" },
      },
      { match: { prefix: "/grpc.health.v1.Health/" }, route: { cluster: "runner", timeout: "0s" } },
      { match: { prefix: "/" }, route: { cluster: "app", timeout: "0s" } },
    ]);
    const endpoint = (c: Obj) =>
      c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    expect(endpoint(cluster("runner"))).toEqual({ address: "127.0.0.1", port_value: 50051 });
    expect(endpoint(cluster("app"))).toEqual({ address: "127.0.0.1", port_value: 8080 });
    for (const name of ["runner", "app"]) {
      const local = cluster(name);
      expect(local.transport_socket).toBeUndefined(); // plaintext inside the shared netns
      const opts =
        local.typed_extension_protocol_options[
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        ];
      expect(opts.explicit_http_config.http2_protocol_options).toBeDefined();
    }
  });

  it("RBAC: runtime + health only for the control plane; everything else only for the stack's services", () => {
    const filters = hcm("inbound").http_filters;
    expect(filters.map((f: Obj) => f.name)).toEqual([
      "envoy.filters.http.rbac",
      "envoy.filters.http.router",
    ]);
    const rules = filters[0].typed_config.rules;
    expect(rules.action).toBe("ALLOW");
    expect(Object.keys(rules.policies).sort()).toEqual(["control-plane", "peers"]);
    const runnerPaths = [
      { url_path: { path: { prefix: "/iac.controlplane.v1.Runtime/" } } },
      { url_path: { path: { prefix: "/grpc.health.v1.Health/" } } },
    ];
    expect(rules.policies["control-plane"]).toEqual({
      permissions: runnerPaths,
      principals: [{ authenticated: { principal_name: { exact: CONTROL_PLANE_SPIFFE_ID } } }],
    });
    expect(rules.policies.peers).toEqual({
      permissions: [{ not_rule: { or_rules: { rules: runnerPaths } } }],
      principals: ["api", "batch", "worker"].map((s) => ({
        authenticated: { principal_name: { exact: `spiffe://demo/${s}` } },
      })),
    });
  });

  it("a service without a port: no app cluster, no peer policy, everything but runtime + health is 404", () => {
    const h = batchCfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    expect(h.route_config.virtual_hosts[0].routes.at(-1)).toEqual({
      match: { prefix: "/" },
      direct_response: { status: 404 },
    });
    expect(h.route_config.virtual_hosts[0].routes.filter((r: Obj) => r.route)).toHaveLength(2);
    expect(Object.keys(h.http_filters[0].typed_config.rules.policies)).toEqual(["control-plane"]);
    expect(batchCfg.static_resources.clusters.map((c: Obj) => c.name)).not.toContain("app");
  });

  it("the runner is reachable by no route other than its two path prefixes", () => {
    for (const doc of [cfg, batchCfg]) {
      for (const l of doc.static_resources.listeners) {
        const routes =
          l.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts.flatMap(
            (v: Obj) => v.routes,
          );
        for (const r of routes.filter((x: Obj) => x.route?.cluster === "runner"))
          expect(r.match.prefix).toMatch(
            /^\/(iac\.controlplane\.v1\.Runtime|grpc\.health\.v1\.Health)\/$/,
          );
      }
    }
  });

  it("inbound hardening: path normalisation, no underscores in headers, XFCC with the caller's URI", () => {
    const h = hcm("inbound");
    expect(h.normalize_path).toBe(true);
    expect(h.merge_slashes).toBe(true);
    expect(h.path_with_escaped_slashes_action).toBe("REJECT_REQUEST");
    expect(h.common_http_protocol_options.headers_with_underscores_action).toBe("REJECT_REQUEST");
    expect(h.forward_client_cert_details).toBe("SANITIZE_SET");
    expect(h.set_current_client_cert_details).toEqual({ uri: true });
    expect(inboundTls().disable_stateless_session_resumption).toBe(true);
  });

  it("outbound on 127.0.0.1:15001 routes by authority to per-peer mTLS clusters of peers with a port", () => {
    expect(listener("outbound").address.socket_address).toEqual({
      address: "127.0.0.1",
      port_value: 15001,
    });
    const hosts = hcm("outbound").route_config.virtual_hosts;
    const worker = hosts.find((v: Obj) => v.name === "worker");
    expect(worker.domains).toEqual(
      expect.arrayContaining(["worker", "worker:15000", "worker.iacnet:15001"]),
    );
    expect(worker.routes[0].route).toEqual({ cluster: "peer_worker", timeout: "0s" });
    expect(hosts.some((v: Obj) => v.name === "api")).toBe(false); // no route to itself
    expect(hosts.some((v: Obj) => v.name === "batch")).toBe(false); // batch serves no peers
    expect(cluster("peer_batch")).toBeUndefined();
    expect(hosts.at(-1).domains).toEqual(["*"]);
    expect(hosts.at(-1).routes[0].direct_response.status).toBe(404);
    const domains = hosts.flatMap((v: Obj) => v.domains);
    expect(new Set(domains).size).toBe(domains.length); // Envoy rejects duplicates
  });

  it("peer clusters: STRICT_DNS <peer>:15000, client cert, SNI, SAN pinned, ALPN h2, TLS 1.3 allowed", () => {
    const c = cluster("peer_worker");
    expect(c.type).toBe("STRICT_DNS");
    expect(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({
      address: "worker",
      port_value: 15000,
    });
    const tls = c.transport_socket.typed_config;
    expect(tls["@type"]).toMatch(/UpstreamTlsContext$/);
    expect(tls.sni).toBe("worker");
    expect(tls.common_tls_context.alpn_protocols).toEqual(["h2"]);
    expect(tls.common_tls_context.tls_params.tls_maximum_protocol_version).toBe("TLSv1_3");
    expect(tls.common_tls_context.tls_certificates[0].certificate_chain.filename).toBe(
      "/etc/iac/certs/cert.pem",
    );
    expect(tls.common_tls_context.validation_context.match_typed_subject_alt_names).toEqual([
      { san_type: "URI", matcher: { exact: "spiffe://demo/worker" } },
    ]);
    const opts =
      c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    expect(opts.explicit_http_config.http2_protocol_options).toBeDefined();
    expect(cluster("peer_api")).toBeUndefined();
  });

  it("admin is on a Unix socket only; metrics on 127.0.0.1:9901 expose only /stats/prometheus", () => {
    expect(cfg.admin.address.pipe.path).toBe("/tmp/envoy-admin.sock");
    expect(cfg.admin.address.socket_address).toBeUndefined();
    const m = listener("metrics");
    expect(m.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 9901 });
    const routes = hcm("metrics").route_config.virtual_hosts[0].routes;
    const proxied = routes.filter((r: Obj) => r.route);
    expect(proxied.every((r: Obj) => r.route.cluster === "envoy_admin" && r.match.path)).toBe(true);
    expect(proxied.map((r: Obj) => r.route.prefix_rewrite ?? r.match.path)).toEqual([
      "/stats/prometheus",
      "/stats/prometheus",
    ]);
    expect(routes.at(-1)).toEqual({ match: { prefix: "/" }, direct_response: { status: 404 } });
    const admin = cluster("envoy_admin");
    expect(admin.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path).toBe(
      "/tmp/envoy-admin.sock",
    );
    // No listener other than inbound binds a non-loopback address.
    for (const l of cfg.static_resources.listeners) {
      if (l.name !== "inbound") expect(l.address.socket_address.address).toBe("127.0.0.1");
    }
  });

  it("limits: overload manager caps connections, stream idle timeout, HTTP/2 limits, buffers", () => {
    const rm = cfg.overload_manager.resource_monitors[0];
    expect(rm.name).toBe("envoy.resource_monitors.global_downstream_max_connections");
    expect(rm.typed_config.max_active_downstream_connections).toBe(1024);
    const h = hcm("inbound");
    expect(h.stream_idle_timeout).toBe("3600s");
    expect(h.request_headers_timeout).toBe("10s");
    expect(h.http2_protocol_options).toEqual({
      max_concurrent_streams: 100,
      initial_stream_window_size: 65536,
      initial_connection_window_size: 1048576,
    });
    for (const l of cfg.static_resources.listeners)
      expect(l.per_connection_buffer_limit_bytes).toBe(32768);
    expect(listener("metrics").ignore_global_conn_limit).toBe(true);
    const custom: Obj = parseYaml(
      renderEnvoyConfig({
        ...stack,
        service: "api",
        peers: [],
        limits: { maxDownstreamConnections: 7 },
      }),
    );
    expect(
      custom.overload_manager.resource_monitors[0].typed_config.max_active_downstream_connections,
    ).toBe(7);
  });

  it("ports constant matches the rendered listeners", () => {
    expect(ENVOY_PORTS).toEqual({ inbound: 15000, outbound: 15001, metrics: 9901 });
    expect(DEFAULT_ENVOY_IMAGE).toMatch(/^envoyproxy\/envoy:v1\.40\.\d+$/);
  });
});

describe("rendering", () => {
  it("rejects ports that are not 1-65535 or that the sidecar and the runner use", () => {
    for (const port of [0, 65536, 1.5, ...RESERVED_PORTS]) {
      expect(() => renderEnvoyConfig({ ...stack, service: "api", port, peers: [] })).toThrow(
        /invalid port/,
      );
      expect(() =>
        renderEnvoyConfig({ ...stack, service: "api", peers: [{ name: "b", port }] }),
      ).toThrow(/invalid port of peer b/);
    }
    expect(RESERVED_PORTS).toEqual([15000, 15001, 9901, 50051]);
  });

  it("rejects values that are not DNS labels / safe paths (no YAML injection)", () => {
    expect(() => renderEnvoyConfig({ ...stack, service: 'api"\nadmin:', peers: [] })).toThrow(
      /invalid service/,
    );
    expect(() =>
      renderEnvoyConfig({ ...stack, service: "api", peers: [{ name: "Bad_Peer" }] }),
    ).toThrow(/invalid peer/);
    expect(() =>
      renderEnvoyConfig({ ...stack, service: "api", peers: [], certDir: "/etc/x y" }),
    ).toThrow(/certDir/);
  });

  it("is deterministic and independent of peer order", () => {
    const p = (...names: string[]) => names.map((name) => ({ name, port: 7000 }));
    const a = renderEnvoyConfig({ ...stack, service: "api", peers: p("b", "a") });
    const b = renderEnvoyConfig({ ...stack, service: "api", peers: p("a", "b", "a") });
    expect(a).toBe(b);
  });

  it("template renderer fails on unknown names and expands nested blocks", () => {
    expect(() => renderTemplate("x: {{nope}}\n", {})).toThrow(/nope/);
    const out = renderTemplate(
      "{{#l}}\n- {{v}} {{k}}\n{{#m}}\n  - {{w}}\n{{/m}}\n{{/l}}\nend {{k}}\n",
      {
        k: 1,
        l: [
          { v: "a", m: [{ w: 2 }] },
          { v: "b", m: [] },
        ],
      },
    );
    expect(out).toBe("- a 1\n  - 2\n- b 1\nend 1\n");
  });

  describe("writeEnvoyConfig", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "iac-envoy-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("writes <stateDir>/<project>/envoy/<service>.yaml, 0644", async () => {
      const peers = [{ name: "worker", port: 7000 }];
      const file = await writeEnvoyConfig(dir, { ...stack, service: "api", peers });
      expect(file).toBe(path.join(dir, "demo", "envoy", "api.yaml"));
      expect((await stat(file)).mode & 0o777).toBe(0o644);
      expect(await readFile(file, "utf8")).toBe(
        renderEnvoyConfig({ ...stack, service: "api", peers }),
      );
    });
  });
});
