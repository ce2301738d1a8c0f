// Dev PKI: one local CA (./secrets/ca.{pem,key}), a leaf cert per service and one for the
// control plane. ECDSA P-256 via node's WebCrypto + @peculiar/x509 (no openssl binary).
// Every identity is a SPIFFE-style URI SAN; sidecars pin peers by it (see src/mesh/envoy.ts).
import {
  X509Certificate as NodeX509,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  webcrypto,
} from "node:crypto";
import { chmod, chown, link, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs the Reflect metadata API first
import * as x509 from "@peculiar/x509";
import { IacError, UsageError } from "../kernel/errors.js";
import {
  CONTROL_PLANE_SPIFFE_ID,
  isDnsLabel,
  isNetworkName,
  serviceSpiffeId,
} from "../kernel/names.js";

// The identities are defined in kernel/names.ts; re-exported for the mesh's users.
export { CONTROL_PLANE_SPIFFE_ID, serviceSpiffeId };
import type { CertPaths } from "../kernel/types.js";

x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const CONTROL_PLANE_DNS = "iac-control-plane";
/** Folder (under the secrets dir) of the control plane's client cert. */
export const CONTROL_PLANE_DIR = "control-plane";
export const CA_VALIDITY_DAYS = 3650;
/** Backdating of notBefore, for clocks a little behind ours (containers, VMs). */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** A CA key file without its cert older than this is a crash leftover, not a creation in flight. */
const STALE_PARTIAL_CA_MS = 30_000;
const DAY_MS = 24 * 60 * 60 * 1000;

const EC_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN_ALG = { name: "ECDSA", hash: "SHA-256" } as const;

export interface CaFiles {
  certFile: string;
  keyFile: string;
  certPem: string;
  /**
   * False for an external CA: ca.pem was put there without its key (a real PKI issues the
   * leaves). Existing valid leaves are used; one that needs (re-)issuing is an error.
   */
  hasKey: boolean;
}

/** What ensure*Cert returns: the paths (CertPaths) plus what happened. */
export interface IssuedCert extends CertPaths {
  dir: string;
  /** True when a new cert was written by this call. */
  issued: boolean;
  /** Why it was (re-)issued: "missing", "sans-changed", "ca-changed", "expiring", ... */
  reason?: string;
  notAfter: Date;
  /** Non-fatal problems, e.g. files could not be chowned (not root) and were made readable. */
  warnings: string[];
}

export interface CertInfo {
  subject: string;
  issuer: string;
  /** "DNS:name", "URI:spiffe://...", "IP:..." */
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  fingerprint256: string;
  isCa: boolean;
  /** "serverAuth", "clientAuth" (or the OID when unknown). */
  extKeyUsage: string[];
}

/** SANs of a service leaf, in the order they are written. */
export function serviceSans(project: string, network: string, service: string): string[] {
  return [
    `DNS:${service}`,
    `DNS:${service}.${network}`,
    `URI:${serviceSpiffeId(project, service)}`,
  ];
}

export function controlPlaneSans(): string[] {
  return [`DNS:${CONTROL_PLANE_DNS}`, `URI:${CONTROL_PLANE_SPIFFE_ID}`];
}

// ---------------------------------------------------------------- files

interface Owner {
  uid: number;
  gid: number;
}

function tmpName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** Writes via a temp file in the same folder: mode and owner are set before the rename. */
async function writeAtomic(file: string, data: string, mode: number, owner?: Owner): Promise<void> {
  const tmp = tmpName(file);
  try {
    await writeFile(tmp, data, { mode, flag: "wx" });
    await chmod(tmp, mode); // the umask may have narrowed (or, for 0600, never widens) it
    if (owner) await chownOrSkip(tmp, owner);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** chown that reports EPERM (we are not root) instead of throwing. */
async function chownOrSkip(file: string, owner: Owner): Promise<boolean> {
  try {
    await chown(file, owner.uid, owner.gid);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EPERM") return false;
    throw err;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

// ---------------------------------------------------------------- keys and certs

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALG, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY") + "\n";
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  // createPrivateKey accepts PKCS#8 and SEC1 ("EC PRIVATE KEY", e.g. from openssl); WebCrypto wants PKCS#8.
  const der = createPrivateKey(pem).export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", der, EC_ALG, false, ["sign"]);
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive
  if (bytes[0] === 0) bytes[0] = 0x01; // no leading zero octet
  return bytes.toString("hex");
}

function sanJson(sans: string[]): x509.JsonGeneralNames {
  return sans.map((san) => {
    const i = san.indexOf(":");
    const kind = san.slice(0, i);
    const value = san.slice(i + 1);
    if (kind === "DNS") return { type: "dns", value };
    if (kind === "URI") return { type: "url", value };
    if (kind === "IP") return { type: "ip", value };
    throw new Error(`unsupported SAN ${san}`);
  });
}

function certPem(cert: x509.X509Certificate): string {
  return cert.toString("pem").trim() + "\n";
}

function readSans(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!ext) return [];
  return ext.names.items.map((n) => {
    if (n.type === "dns") return `DNS:${n.value}`;
    if (n.type === "url") return `URI:${n.value}`;
    if (n.type === "ip") return `IP:${n.value}`;
    if (n.type === "email") return `email:${n.value}`;
    return `${n.type}:${n.value}`;
  });
}

function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((v, i) => v === sb[i]);
}

function spkiDer(key: ReturnType<typeof createPublicKey>): Buffer {
  return key.export({ type: "spki", format: "der" });
}

// ---------------------------------------------------------------- CA

interface LoadedCa {
  files: CaFiles;
  cert: NodeX509;
  key?: CryptoKey;
  subject: string;
}

function caPaths(secretsDir: string): { certFile: string; keyFile: string } {
  return { certFile: path.join(secretsDir, "ca.pem"), keyFile: path.join(secretsDir, "ca.key") };
}

async function loadCa(secretsDir: string, certPemText: string, keyPem?: string): Promise<LoadedCa> {
  const { certFile, keyFile } = caPaths(secretsDir);
  let cert: NodeX509;
  try {
    cert = new NodeX509(certPemText);
  } catch (err) {
    throw new IacError(
      `${certFile} is not a PEM certificate`,
      `restore it or remove ${certFile} and ${keyFile} and run \`iac pki init\` (all leaf certs are re-issued)`,
      { cause: err },
    );
  }
  if (!cert.ca) {
    throw new IacError(`${certFile} is not a CA certificate (basicConstraints CA:false)`);
  }
  if (keyPem !== undefined) {
    let privateKey;
    try {
      privateKey = createPrivateKey(keyPem);
    } catch (err) {
      throw new IacError(`${keyFile} is not a PEM private key`, undefined, { cause: err });
    }
    if (!spkiDer(createPublicKey(privateKey)).equals(spkiDer(cert.publicKey))) {
      throw new IacError(
        `${keyFile} does not belong to ${certFile}`,
        "restore the matching pair, or remove both files and run `iac pki init`",
      );
    }
  }
  if (new Date(cert.validTo).getTime() <= Date.now()) {
    throw new IacError(
      `the dev CA ${certFile} expired on ${new Date(cert.validTo).toISOString()}`,
      `remove ${certFile} and ${keyFile}, run \`iac pki init\`, then redeploy (leaf certs are re-issued)`,
    );
  }
  if (keyPem === undefined) {
    return {
      files: { certFile, keyFile, certPem: certPemText, hasKey: false },
      cert,
      subject: cert.subject,
    };
  }
  await chmod(keyFile, 0o600);
  return {
    files: { certFile, keyFile, certPem: certPemText, hasKey: true },
    cert,
    key: await importSigningKey(keyPem),
    subject: cert.subject,
  };
}

async function createCa(secretsDir: string): Promise<"created" | "lost-race"> {
  const { certFile, keyFile } = caPaths(secretsDir);
  const keys = await generateKeys();
  const name = `CN=iac-wrapper dev CA ${new Date().toISOString().slice(0, 10)} ${randomBytes(3).toString("hex")}, O=iac-wrapper`;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyTmp = tmpName(keyFile);
  await writeFile(keyTmp, await privateKeyPem(keys.privateKey), { mode: 0o600, flag: "wx" });
  try {
    // Publishing the key with link() is exclusive: of two concurrent creators only one wins.
    await link(keyTmp, keyFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return "lost-race";
    throw err;
  } finally {
    await rm(keyTmp, { force: true });
  }
  await writeAtomic(certFile, certPem(cert), 0o644);
  return "created";
}

const caInFlight = new Map<string, Promise<LoadedCa>>();

async function ensureCaLoaded(secretsDir: string): Promise<LoadedCa> {
  const dir = path.resolve(secretsDir);
  let pending = caInFlight.get(dir);
  if (!pending) {
    pending = ensureCaOnce(dir).finally(() => caInFlight.delete(dir));
    caInFlight.set(dir, pending);
  }
  return pending;
}

async function ensureCaOnce(secretsDir: string): Promise<LoadedCa> {
  await ensurePrivateDir(secretsDir);
  const { certFile, keyFile } = caPaths(secretsDir);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [certText, keyText] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
    // ca.pem without ca.key: an external CA (we publish the key first, so this is not a
    // creation in flight).
    if (certText !== undefined) return loadCa(secretsDir, certText, keyText);
    if (keyText !== undefined) {
      // Another process is creating the CA right now, or one crashed half-way.
      const age = Date.now() - (await stat(keyFile)).mtimeMs;
      if (age > STALE_PARTIAL_CA_MS) await rm(keyFile, { force: true });
      else if (Date.now() > deadline) throw new IacError(`timed out waiting for ${certFile}`);
      else await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    await createCa(secretsDir); // "lost-race": loop and read what the winner wrote
  }
}

/** Creates the dev CA once (./secrets/ca.pem + ca.key, key 0600, folder 0700) and reuses it. */
export async function ensureCa(opts: { secretsDir: string }): Promise<CaFiles> {
  return (await ensureCaLoaded(opts.secretsDir)).files;
}

// ---------------------------------------------------------------- leaves

interface LeafSpec {
  dir: string;
  commonName: string;
  sans: string[];
  eku: x509.ExtendedKeyUsage[];
  validityDays: number;
  owner?: Owner;
}

function leafPaths(dir: string): CertPaths {
  return {
    caFile: path.join(dir, "ca.pem"),
    certFile: path.join(dir, "cert.pem"),
    keyFile: path.join(dir, "key.pem"),
  };
}

/** Why the cert on disk must be replaced, or undefined when it is still good. */
function reissueReason(
  ca: LoadedCa,
  spec: LeafSpec,
  existing: { cert?: string; key?: string; ca?: string },
  now: number,
): string | undefined {
  if (existing.cert === undefined || existing.key === undefined) return "missing";
  let cert: NodeX509;
  try {
    cert = new NodeX509(existing.cert);
  } catch {
    return "unreadable";
  }
  if (existing.ca?.trim() !== ca.files.certPem.trim()) return "ca-changed";
  if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey)) return "ca-changed";
  try {
    if (!spkiDer(createPublicKey(existing.key)).equals(spkiDer(cert.publicKey)))
      return "key-mismatch";
  } catch {
    return "unreadable";
  }
  const sans = readSans(new x509.X509Certificate(existing.cert));
  if (!sameSet(sans, spec.sans)) return "sans-changed";
  const notBefore = new Date(cert.validFrom).getTime();
  const notAfter = new Date(cert.validTo).getTime();
  if (notAfter <= now) return "expired";
  // Renew in the last third of the lifetime (a 30-day cert is renewed after day 20).
  if (notAfter - now < (notAfter - notBefore) / 3) return "expiring";
  // A cert that outlives the requested validity by far (validity was shortened) is renewed too,
  // unless an external PKI issues the leaves (its lifetimes are its own business).
  if (ca.key && notAfter - now > (spec.validityDays + 1) * DAY_MS) return "validity-changed";
  return undefined;
}

async function issueLeaf(
  ca: LoadedCa,
  spec: LeafSpec,
  reason: string,
): Promise<{ certPem: string; keyPem: string; notAfter: Date }> {
  if (!ca.key) {
    throw new IacError(
      `${path.join(spec.dir, "cert.pem")} needs a new certificate (${reason}), but the CA key ` +
        `${ca.files.keyFile} is absent (external CA)`,
      `issue it with your PKI (SANs ${spec.sans.join(", ")}; signed by ${ca.files.certFile}), ` +
        `or put the CA key at ${ca.files.keyFile}`,
    );
  }
  const signingKey = ca.key;
  const keys = await generateKeys();
  const now = Date.now();
  const caNotAfter = new Date(ca.cert.validTo).getTime();
  const notAfter = new Date(Math.min(now + spec.validityDays * DAY_MS, caNotAfter));
  const caX = new x509.X509Certificate(ca.files.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${spec.commonName}, O=iac-wrapper`,
    issuer: caX.subject,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(spec.eku, false),
      new x509.SubjectAlternativeNameExtension(sanJson(spec.sans), false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caX),
    ],
  });
  return { certPem: certPem(cert), keyPem: await privateKeyPem(keys.privateKey), notAfter };
}

async function ensureLeaf(secretsDir: string, spec: LeafSpec): Promise<IssuedCert> {
  const ca = await ensureCaLoaded(secretsDir);
  await mkdir(spec.dir, { recursive: true, mode: 0o700 });
  const paths = leafPaths(spec.dir);
  const [cert, key, caCopy] = await Promise.all([
    readIfExists(paths.certFile),
    readIfExists(paths.keyFile),
    readIfExists(paths.caFile),
  ]);
  const reason = reissueReason(ca, spec, { cert, key, ca: caCopy }, Date.now());
  let notAfter: Date;
  if (reason) {
    const leaf = await issueLeaf(ca, spec, reason);
    // Key first: a crash between the two writes leaves a key/cert mismatch, which is re-issued.
    await writeAtomic(paths.keyFile, leaf.keyPem, 0o600, spec.owner);
    await writeAtomic(paths.certFile, leaf.certPem, 0o644, spec.owner);
    await writeAtomic(paths.caFile, ca.files.certPem, 0o644, spec.owner);
    notAfter = leaf.notAfter;
  } else {
    notAfter = new Date(new NodeX509(cert!).validTo);
  }
  const warnings = await applyOwnership(spec.dir, paths, spec.owner);
  return { ...paths, dir: spec.dir, issued: reason !== undefined, reason, notAfter, warnings };
}

/**
 * Modes (dir 0700, key 0600) and, when an owner is given, chown of dir and files to it: the
 * container user reads them through a read-only bind mount. Runs on every call, so switching the
 * sidecar (Envoy uid 101 <-> runner uid 10001) re-owns existing certs. Without the right to chown
 * (not root), the files are made readable instead: the 0700 secrets folder above still keeps
 * other host users out.
 */
async function applyOwnership(dir: string, paths: CertPaths, owner?: Owner): Promise<string[]> {
  const files = [paths.keyFile, paths.certFile, paths.caFile];
  if (!owner || owner.uid === process.getuid?.()) {
    await chmod(dir, 0o700);
    await chmod(paths.keyFile, 0o600);
    return [];
  }
  let ok = await chownOrSkip(dir, owner);
  for (const f of files) ok = (await chownOrSkip(f, owner)) && ok;
  if (ok) {
    await chmod(dir, 0o700);
    await chmod(paths.keyFile, 0o600);
    return [];
  }
  await chmod(dir, 0o755);
  await chmod(paths.keyFile, 0o644);
  return [
    `cannot chown ${dir} to uid ${owner.uid} (not root): made ${paths.keyFile} readable (0644) for the container; ` +
      `the secrets folder (0700) still keeps other host users out`,
  ];
}

export interface ServiceCertOptions {
  secretsDir: string;
  project: string;
  network: string;
  service: string;
  validityDays: number;
  /** uid that reads the files inside the container (Envoy 101, runner 10001). */
  ownerUid?: number;
  /** Defaults to ownerUid. */
  ownerGid?: number;
}

/** secrets/<project>/<service>/{cert.pem,key.pem,ca.pem}; (re-)issued only when needed. */
export async function ensureServiceCert(opts: ServiceCertOptions): Promise<IssuedCert> {
  const { project, network, service } = opts;
  if (!isDnsLabel(project))
    throw new UsageError(`invalid project name ${JSON.stringify(project)}`, "use a DNS label");
  if (!isDnsLabel(service))
    throw new UsageError(`invalid service name ${JSON.stringify(service)}`, "use a DNS label");
  if (!isNetworkName(network))
    throw new UsageError(`invalid network name ${JSON.stringify(network)}`);
  if (
    serviceSpiffeId(project, service) === CONTROL_PLANE_SPIFFE_ID ||
    project === CONTROL_PLANE_DIR
  ) {
    throw new UsageError(
      `service ${service} in project ${project} would share the control plane's identity or folder`,
      "rename the service (name: in the repos file) or use another --project",
    );
  }
  checkValidity(opts.validityDays);
  return ensureLeaf(opts.secretsDir, {
    dir: path.join(opts.secretsDir, project, service),
    commonName: service,
    sans: serviceSans(project, network, service),
    eku: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    validityDays: opts.validityDays,
    owner:
      opts.ownerUid === undefined
        ? undefined
        : { uid: opts.ownerUid, gid: opts.ownerGid ?? opts.ownerUid },
  });
}

/** secrets/control-plane/{cert.pem,key.pem,ca.pem}: the client identity of `iac` itself. */
export async function ensureControlPlaneCert(opts: {
  secretsDir: string;
  validityDays: number;
}): Promise<IssuedCert> {
  checkValidity(opts.validityDays);
  return ensureLeaf(opts.secretsDir, {
    dir: path.join(opts.secretsDir, CONTROL_PLANE_DIR),
    commonName: CONTROL_PLANE_DNS,
    sans: controlPlaneSans(),
    eku: [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth],
    validityDays: opts.validityDays,
  });
}

/**
 * The control plane's client cert as it is on disk, for commands that only read (health, logs,
 * status): nothing is created, renewed or chmod-ed, so they work on a read-only secrets folder
 * and never mint a CA. A cert in the last third of its life is still used (a deploy renews it);
 * a missing, expired or foreign one is an error naming the folder and the fix.
 */
export async function readControlPlaneCert(opts: { secretsDir: string }): Promise<IssuedCert> {
  const dir = path.join(opts.secretsDir, CONTROL_PLANE_DIR);
  const paths = leafPaths(dir);
  const fix =
    "run `iac pki init` (or a deploy) with IAC_SECRETS_DIR writable; commands that only read " +
    "never create or renew certificates";
  const [caText, cert, key, caCopy] = await Promise.all([
    readIfExists(caPaths(opts.secretsDir).certFile),
    readIfExists(paths.certFile),
    readIfExists(paths.keyFile),
    readIfExists(paths.caFile),
  ]);
  if (caText === undefined)
    throw new IacError(
      `no control-plane certificate: no dev CA in ${opts.secretsDir} (IAC_SECRETS_DIR)`,
      fix,
    );
  const ca = await loadCa(opts.secretsDir, caText);
  const spec: LeafSpec = {
    dir,
    commonName: CONTROL_PLANE_DNS,
    sans: controlPlaneSans(),
    eku: [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth],
    validityDays: 825,
  };
  const reason = reissueReason(ca, spec, { cert, key, ca: caCopy }, Date.now());
  if (reason !== undefined && reason !== "expiring")
    throw new IacError(`no control-plane certificate in ${dir} (${reason})`, fix);
  return {
    ...paths,
    dir,
    issued: false,
    notAfter: new Date(new NodeX509(cert!).validTo),
    warnings: [],
  };
}

function checkValidity(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 825) {
    throw new UsageError(`certificate validity must be 1..825 days, got ${days}`);
  }
}

// ---------------------------------------------------------------- inspection

const EKU_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(x509.ExtendedKeyUsage).map(([name, oid]) => [oid, name]),
);

/** Subject, SANs, validity of a PEM cert (the first one in the text), for `iac pki show`. */
export function describeCert(pem: string): CertInfo {
  const cert = new x509.X509Certificate(pem);
  const node = new NodeX509(pem);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    sans: readSans(cert),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    serialNumber: cert.serialNumber,
    fingerprint256: node.fingerprint256,
    isCa: node.ca,
    extKeyUsage: Array.from(eku?.usages ?? [], (u) => EKU_NAMES[String(u)] ?? String(u)),
  };
}
