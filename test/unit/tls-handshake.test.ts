// Real mutual-TLS handshakes on loopback with the dev PKI: a server holding a service leaf
// (requestCert + rejectUnauthorized, like the sidecar's inbound listener) and a client holding
// the control-plane cert (like `iac health`), checking the server's SPIFFE id.
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CONTROL_PLANE_SPIFFE_ID,
  ensureControlPlaneCert,
  ensureServiceCert,
  serviceSpiffeId,
} from "../../src/mesh/pki.js";
import type { CertPaths } from "../../src/kernel/types.js";

interface Pems {
  ca: string;
  cert: string;
  key: string;
}

async function pems(p: CertPaths): Promise<Pems> {
  const [ca, cert, key] = await Promise.all(
    [p.caFile, p.certFile, p.keyFile].map((f) => readFile(f, "utf8")),
  );
  return { ca: ca!, cert: cert!, key: key! };
}

let root: string;
let service: Pems; // demo/api, our CA
let controlPlane: Pems; // our CA
let rogue: Pems; // control-plane cert from another CA
let rogueService: Pems; // demo/api from another CA
let server: tls.Server;
let port: number;
/** SPIFFE id of the last client the server accepted. */
let lastPeer: string | undefined;
/** Why the server refused the last failed handshake. */
let lastServerError: string | undefined;

/** Like the runner / Envoy inbound: mTLS, TLS >= 1.2, ALPN h2, only callers from our CA. */
function startServer(identity: Pems): Promise<tls.Server> {
  const srv = tls.createServer(
    {
      key: identity.key,
      cert: identity.cert,
      ca: identity.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      ALPNProtocols: ["h2"],
    },
    (socket) => {
      lastPeer = socket.getPeerCertificate().subjectaltname;
      socket.end("ok\n");
    },
  );
  srv.on("tlsClientError", (err) => (lastServerError = err.message)); // some tests expect these
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

/** Checks the server's URI SAN (its SPIFFE id) instead of / on top of the DNS name. */
function expectSpiffe(id: string): tls.ConnectionOptions["checkServerIdentity"] {
  return (host, cert) => {
    const base = tls.checkServerIdentity(host, cert);
    if (base) return base;
    const uris = (cert.subjectaltname ?? "").split(", ").filter((s) => s.startsWith("URI:"));
    return uris.includes(`URI:${id}`)
      ? undefined
      : new Error(`server is ${uris.join(",")}, expected ${id}`);
  };
}

/** Resolves with what the server sent ("ok\n"), rejects with the TLS error. */
function call(opts: tls.ConnectionOptions, p = port): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port: p, ALPNProtocols: ["h2"], ...opts });
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (data += d));
    socket.on("error", reject);
    socket.on("close", () => (data ? resolve(data) : reject(new Error("closed without data"))));
    socket.setTimeout(5000, () => socket.destroy(new Error("timeout")));
  });
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "iac-tls-"));
  const ours = path.join(root, "ours");
  const theirs = path.join(root, "theirs");
  const svc = { project: "demo", network: "iacnet", service: "api", validityDays: 1 };
  [service, controlPlane, rogue, rogueService] = await Promise.all([
    ensureServiceCert({ secretsDir: ours, ...svc }).then(pems),
    ensureControlPlaneCert({ secretsDir: ours, validityDays: 1 }).then(pems),
    ensureControlPlaneCert({ secretsDir: theirs, validityDays: 1 }).then(pems),
    ensureServiceCert({ secretsDir: theirs, ...svc }).then(pems),
  ]);
  server = await startServer(service);
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await rm(root, { recursive: true, force: true });
});

const asControlPlane = (): tls.ConnectionOptions => ({
  ca: controlPlane.ca,
  cert: controlPlane.cert,
  key: controlPlane.key,
  servername: "api",
  checkServerIdentity: expectSpiffe(serviceSpiffeId("demo", "api")),
});

describe("mTLS handshake on loopback", () => {
  it("succeeds: control-plane client cert <-> service leaf, both sides verified, h2 negotiated", async () => {
    lastPeer = undefined;
    const socketInfo = await new Promise<{ alpn: string | false; proto: string | null }>(
      (resolve, reject) => {
        const s = tls.connect(
          { host: "127.0.0.1", port, ALPNProtocols: ["h2"], ...asControlPlane() },
          () => {
            resolve({ alpn: s.alpnProtocol ?? false, proto: s.getProtocol() });
          },
        );
        s.on("error", reject);
        s.on("data", () => s.end());
      },
    );
    expect(socketInfo.alpn).toBe("h2");
    expect(socketInfo.proto).toBe("TLSv1.3");
    expect(await call(asControlPlane())).toBe("ok\n");
    expect(lastPeer).toContain(`URI:${CONTROL_PLANE_SPIFFE_ID}`);
  });

  it("succeeds over TLS 1.2 too (the minimum)", async () => {
    expect(await call({ ...asControlPlane(), maxVersion: "TLSv1.2" })).toBe("ok\n");
  });

  it("fails when the client cert comes from another CA", async () => {
    lastServerError = undefined;
    lastPeer = undefined;
    // Only cert + key differ from the succeeding call above. Under TLS 1.3 the client finishes
    // its side first; the server then refuses the chain and drops the connection.
    await expect(call({ ...asControlPlane(), cert: rogue.cert, key: rogue.key })).rejects.toThrow(
      /closed without data|ECONNRESET|unknown ca|alert/,
    );
    expect(lastServerError).toBeDefined();
    expect(lastPeer).toBeUndefined(); // the connection handler never ran
    // Under TLS 1.2 the refusal happens inside the handshake: no secure connection at all.
    await expect(
      call({ ...asControlPlane(), cert: rogue.cert, key: rogue.key, maxVersion: "TLSv1.2" }),
    ).rejects.toThrow(/disconnected before secure TLS connection was established/);
  });

  it("fails without a client cert", async () => {
    lastServerError = undefined;
    await expect(call({ ...asControlPlane(), cert: undefined, key: undefined })).rejects.toThrow(
      /certificate required/,
    );
    expect(lastServerError).toMatch(/peer did not return a certificate/);
  });

  it("fails when the expected SAN does not match (SPIFFE id or DNS name)", async () => {
    await expect(
      call({
        ...asControlPlane(),
        checkServerIdentity: expectSpiffe(serviceSpiffeId("demo", "worker")),
      }),
    ).rejects.toThrow(/expected spiffe:\/\/demo\/worker/);
    await expect(
      call({
        ...asControlPlane(),
        servername: "worker",
        checkServerIdentity: tls.checkServerIdentity,
      }),
    ).rejects.toThrow(/does not match certificate's altnames/);
  });

  it("fails when the server's cert comes from another CA (client verifies the server)", async () => {
    const other = await startServer(rogueService);
    try {
      await expect(call(asControlPlane(), (other.address() as AddressInfo).port)).rejects.toThrow(
        /unable to verify|self[- ]signed|certificate/i,
      );
    } finally {
      await new Promise((r) => other.close(r));
    }
  });

  it("refuses TLS 1.1", async () => {
    await expect(
      call({ ...asControlPlane(), minVersion: "TLSv1", maxVersion: "TLSv1.1" }),
    ).rejects.toThrow();
  });
});
