// Dev PKI: CA creation and reuse, service and control-plane leaves, file modes, re-issue rules.
import { X509Certificate as NodeX509 } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import "reflect-metadata"; // before @peculiar/x509 (tsyringe needs it)
import * as x509 from "@peculiar/x509";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CONTROL_PLANE_SPIFFE_ID,
  describeCert,
  ensureCa,
  ensureControlPlaneCert,
  ensureServiceCert,
  type IssuedCert,
} from "../../src/mesh/pki.js";
import { listCerts } from "../../src/cli/pki.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot)
  console.warn("\n*** SKIPPED: chown of cert files to the container uid needs root. ***\n");

let root: string;
let secretsDir: string;
let caPem: string;
let api: IssuedCert;

const base = { project: "demo", network: "iacnet", service: "api", validityDays: 30 };
const mode = async (p: string) => (await stat(p)).mode & 0o777;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "iac-pki-"));
  secretsDir = path.join(root, "secrets");
  caPem = (await ensureCa({ secretsDir })).certPem;
  api = await ensureServiceCert({ secretsDir, ...base });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

afterEach(() => {
  vi.useRealTimers();
});

describe("dev CA", () => {
  it("writes secrets/ca.pem and ca.key (0600) in a 0700 folder", async () => {
    expect(await mode(secretsDir)).toBe(0o700);
    expect(await mode(path.join(secretsDir, "ca.key"))).toBe(0o600);
    expect(await readFile(path.join(secretsDir, "ca.pem"), "utf8")).toBe(caPem);
  });

  it("is a CA: basicConstraints CA pathlen 0 (critical), keyCertSign + cRLSign, ECDSA P-256", () => {
    const cert = new x509.X509Certificate(caPem);
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(true);
    expect(bc.pathLength).toBe(0);
    expect(bc.critical).toBe(true);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    const node = new NodeX509(caPem);
    expect(node.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(node.verify(node.publicKey)).toBe(true); // self-signed
  });

  it("is created once and reused: a second call does not rewrite it", async () => {
    const before = await stat(path.join(secretsDir, "ca.key"));
    const again = await ensureCa({ secretsDir });
    const after = await stat(path.join(secretsDir, "ca.key"));
    expect(again.certPem).toBe(caPem);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it("concurrent first calls agree on one CA", async () => {
    const dir = path.join(root, "concurrent");
    const all = await Promise.all([1, 2, 3].map(() => ensureCa({ secretsDir: dir })));
    expect(new Set(all.map((c) => c.certPem)).size).toBe(1);
  });

  it("without ca.key (external CA): uses valid leaves, refuses to issue with an actionable error", async () => {
    const dir = path.join(root, "external");
    await ensureCa({ secretsDir: dir });
    const leaf = await ensureServiceCert({ secretsDir: dir, ...base });
    await rm(path.join(dir, "ca.key"));
    const ca = await ensureCa({ secretsDir: dir });
    expect(ca.hasKey).toBe(false);
    expect((await ensureServiceCert({ secretsDir: dir, ...base })).certFile).toBe(leaf.certFile);
    await expect(ensureServiceCert({ secretsDir: dir, ...base, service: "new" })).rejects.toThrow(
      /needs a new certificate \(missing\), but the CA key .* is absent \(external CA\)/,
    );
  });
});

describe("service leaf", () => {
  it("chains to the CA (signature + issuer), is not a CA, and lasts validityDays", () => {
    const leaf = new NodeX509(readCert(api));
    const ca = new NodeX509(caPem);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    const days = (new Date(leaf.validTo).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it("has SAN DNS service, service.network and URI spiffe://project/service", () => {
    expect(describeCert(readCert(api)).sans).toEqual([
      "DNS:api",
      "DNS:api.iacnet",
      "URI:spiffe://demo/api",
    ]);
    expect(new NodeX509(readCert(api)).subjectAltName).toBe(
      "DNS:api, DNS:api.iacnet, URI:spiffe://demo/api",
    );
  });

  it("has EKU serverAuth + clientAuth and key usage digitalSignature", () => {
    const cert = new x509.X509Certificate(readCert(api));
    expect(describeCert(readCert(api)).extKeyUsage).toEqual(["serverAuth", "clientAuth"]);
    expect(cert.getExtension(x509.KeyUsagesExtension)!.usages).toBe(
      x509.KeyUsageFlags.digitalSignature,
    );
  });

  it("writes secrets/<project>/<service>/{cert,key,ca}.pem: key 0600, folder 0700, ca.pem = CA", async () => {
    expect(api.dir).toBe(path.join(secretsDir, "demo", "api"));
    expect(api.certFile).toBe(path.join(api.dir, "cert.pem"));
    expect(await mode(api.keyFile)).toBe(0o600);
    expect(await mode(api.dir)).toBe(0o700);
    expect(await readFile(api.caFile, "utf8")).toBe(caPem);
    expect(api.issued).toBe(true);
    expect(api.reason).toBe("missing");
  });

  it("is reused when still good", async () => {
    const again = await ensureServiceCert({ secretsDir, ...base });
    expect(again.issued).toBe(false);
    expect(readCert(again)).toBe(readCert(api));
  });

  it("is re-issued when its SANs change (another network)", async () => {
    const svc = { ...base, service: "moves" };
    await ensureServiceCert({ secretsDir, ...svc });
    const moved = await ensureServiceCert({ secretsDir, ...svc, network: "othernet" });
    expect(moved.issued).toBe(true);
    expect(moved.reason).toBe("sans-changed");
    expect(describeCert(readCert(moved)).sans).toContain("DNS:moves.othernet");
  });

  it("is re-issued in the last third of its lifetime, not before", async () => {
    const svc = { ...base, service: "ages" };
    const first = await ensureServiceCert({ secretsDir, ...svc });
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 19 * 86_400_000);
    expect((await ensureServiceCert({ secretsDir, ...svc })).issued).toBe(false);
    vi.setSystemTime(Date.now() + 2 * 86_400_000); // day 21 of 30
    const renewed = await ensureServiceCert({ secretsDir, ...svc });
    expect(renewed.reason).toBe("expiring");
    expect(renewed.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
  });

  it("is re-issued when its key does not match the cert", async () => {
    const svc = { ...base, service: "rekey" };
    const first = await ensureServiceCert({ secretsDir, ...svc });
    await writeFile(first.keyFile, await readFile(api.keyFile));
    expect((await ensureServiceCert({ secretsDir, ...svc })).reason).toBe("key-mismatch");
  });

  it("is re-issued when the CA changed", async () => {
    const dir = path.join(root, "rotate");
    const firstPem = readCert(await ensureServiceCert({ secretsDir: dir, ...base }));
    await rm(path.join(dir, "ca.pem"));
    await rm(path.join(dir, "ca.key"));
    const newCa = await ensureCa({ secretsDir: dir });
    const second = await ensureServiceCert({ secretsDir: dir, ...base });
    expect(second.reason).toBe("ca-changed");
    expect(new NodeX509(readCert(second)).verify(new NodeX509(newCa.certPem).publicKey)).toBe(true);
    expect(readCert(second)).not.toBe(firstPem);
  });

  it.skipIf(!isRoot)(
    "is chowned to ownerUid (container user) and re-owned when it changes",
    async () => {
      const svc = { ...base, service: "owned" };
      const envoy = await ensureServiceCert({ secretsDir, ...svc, ownerUid: 101 });
      for (const p of [envoy.dir, envoy.keyFile, envoy.certFile, envoy.caFile]) {
        expect((await stat(p)).uid).toBe(101);
        expect((await stat(p)).gid).toBe(101);
      }
      expect(await mode(envoy.keyFile)).toBe(0o600);
      const runner = await ensureServiceCert({ secretsDir, ...svc, ownerUid: 10001 });
      expect(runner.issued).toBe(false);
      expect((await stat(runner.keyFile)).uid).toBe(10001);
      expect(runner.warnings).toEqual([]);
    },
  );

  it("rejects bad names and a service that would take the control plane's identity", async () => {
    await expect(ensureServiceCert({ secretsDir, ...base, service: "Bad_Name" })).rejects.toThrow(
      /invalid service/,
    );
    await expect(
      ensureServiceCert({ secretsDir, ...base, project: "iac", service: "control-plane" }),
    ).rejects.toThrow(/control plane/);
    await expect(ensureServiceCert({ secretsDir, ...base, validityDays: 0 })).rejects.toThrow(
      /validity/,
    );
  });
});

describe("control-plane cert", () => {
  it("lives in secrets/control-plane with URI spiffe://iac/control-plane, DNS iac-control-plane, clientAuth", async () => {
    const cp = await ensureControlPlaneCert({ secretsDir, validityDays: 30 });
    expect(cp.dir).toBe(path.join(secretsDir, "control-plane"));
    const info = describeCert(readCert(cp));
    expect(CONTROL_PLANE_SPIFFE_ID).toBe("spiffe://iac/control-plane");
    expect(info.sans).toEqual(["DNS:iac-control-plane", `URI:${CONTROL_PLANE_SPIFFE_ID}`]);
    expect(info.extKeyUsage).toContain("clientAuth");
    expect(info.isCa).toBe(false);
    expect(new NodeX509(readCert(cp)).checkIssued(new NodeX509(caPem))).toBe(true);
    expect(await mode(cp.keyFile)).toBe(0o600);
    expect((await ensureControlPlaneCert({ secretsDir, validityDays: 30 })).issued).toBe(false);
  });
});

describe("iac pki show (listCerts)", () => {
  it("lists the CA, the control plane and every service cert, optionally for one project", async () => {
    const names = (await listCerts(secretsDir)).map((c) => c.name);
    expect(names.slice(0, 2)).toEqual(["ca", "control-plane"]);
    expect(names).toContain("demo/api");
    const api = (await listCerts(secretsDir, "demo")).find((c) => c.name === "demo/api")!;
    expect(api.sans).toContain("URI:spiffe://demo/api");
    expect(api.expiresInDays).toBeGreaterThanOrEqual(29);
    await expect(listCerts(path.join(root, "empty"))).rejects.toThrow(/no dev CA at/);
  });
});

describe("describeCert", () => {
  it("reports subject, issuer, SANs, validity for `iac pki show`", () => {
    const info = describeCert(readCert(api));
    expect(info.subject).toBe("CN=api, O=iac-wrapper");
    expect(info.issuer).toBe(describeCert(caPem).subject);
    expect(info.notAfter.getTime()).toBeGreaterThan(info.notBefore.getTime());
    expect(info.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(describeCert(caPem).isCa).toBe(true);
  });
});

function readCert(c: { certFile: string }): string {
  return readFileSync(c.certFile, "utf8");
}
