// `iac pki init` creates the dev CA and the control plane's client cert; `iac pki show`
// lists the CA and every issued cert (subject, SANs, expiry).
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { IacError } from "../kernel/errors.js";
import type { CertInfo } from "../mesh/pki.js";
import {
  configFromFlags,
  outputOption,
  printJson,
  progress,
  projectOption,
  type OutputFormat,
} from "./shared.js";

interface ShownCert extends CertInfo {
  /** "ca", "control-plane" or "<project>/<service>". */
  name: string;
  file: string;
  expiresInDays: number;
  expired: boolean;
}

async function readCertFile(name: string, file: string): Promise<ShownCert> {
  const { describeCert } = await import("../mesh/pki.js");
  const info = describeCert(await readFile(file, "utf8"));
  const expiresInDays = Math.floor((info.notAfter.getTime() - Date.now()) / 86_400_000);
  return { name, file, ...info, expiresInDays, expired: info.notAfter.getTime() <= Date.now() };
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  return readFile(file).then(
    () => true,
    () => false,
  );
}

/** The CA, the control-plane cert and every service cert under the secrets folder. */
export async function listCerts(secretsDir: string, project?: string): Promise<ShownCert[]> {
  const { CONTROL_PLANE_DIR } = await import("../mesh/pki.js");
  const caFile = path.join(secretsDir, "ca.pem");
  if (!(await exists(caFile))) {
    throw new IacError(
      `no dev CA at ${caFile}`,
      "run `iac pki init` (or `iac deploy`, which creates it)",
    );
  }
  const out = [await readCertFile("ca", caFile)];
  const cp = path.join(secretsDir, CONTROL_PLANE_DIR, "cert.pem");
  if (await exists(cp)) out.push(await readCertFile("control-plane", cp));
  const projects = project
    ? [project]
    : (await subdirs(secretsDir)).filter((d) => d !== CONTROL_PLANE_DIR);
  for (const p of projects) {
    for (const s of await subdirs(path.join(secretsDir, p))) {
      const file = path.join(secretsDir, p, s, "cert.pem");
      if (await exists(file)) out.push(await readCertFile(`${p}/${s}`, file));
    }
  }
  return out;
}

function printText(certs: ShownCert[]): void {
  for (const c of certs) {
    const when = c.expired ? "EXPIRED" : `expires in ${c.expiresInDays} d`;
    process.stdout.write(
      `${c.name}\n  subject  ${c.subject}\n  issuer   ${c.issuer}\n` +
        (c.sans.length ? `  SANs     ${c.sans.join(", ")}\n` : "") +
        `  valid    ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()} (${when})\n  file     ${c.file}\n`,
    );
  }
}

export function registerPkiCommand(program: Command): void {
  const pki = program
    .command("pki")
    .description("the dev CA and the mTLS certificates (./secrets)");

  pki
    .command("init")
    .description("create the dev CA (once) and the control plane's client certificate")
    .addOption(outputOption())
    .action(async (flags: { output: OutputFormat }) => {
      const { describeCert, ensureCa, ensureControlPlaneCert } = await import("../mesh/pki.js");
      const config = await configFromFlags({});
      const ca = await ensureCa({ secretsDir: config.secretsDir });
      const cp = await ensureControlPlaneCert({
        secretsDir: config.secretsDir,
        validityDays: config.certValidityDays,
      });
      const result = {
        ca: { file: ca.certFile, keyFile: ca.keyFile, ...describeCert(ca.certPem) },
        controlPlane: {
          file: cp.certFile,
          keyFile: cp.keyFile,
          issued: cp.issued,
          ...describeCert(await readFile(cp.certFile, "utf8")),
        },
      };
      if (flags.output === "json") return printJson(result);
      progress(`dev CA: ${ca.certFile} (${result.ca.subject})`);
      progress(
        `control plane: ${cp.certFile} ${cp.issued ? `(issued: ${cp.reason})` : "(up to date)"}, ` +
          `expires ${cp.notAfter.toISOString()}`,
      );
    });

  pki
    .command("show")
    .description("subject, SANs and expiry of the CA and every issued certificate (or of FILE)")
    .argument("[file]", "a PEM certificate to describe instead")
    .addOption(projectOption())
    .addOption(outputOption())
    .action(async (file: string | undefined, flags: { project?: string; output: OutputFormat }) => {
      const config = await configFromFlags({ project: flags.project });
      const certs = file
        ? [await readCertFile(path.basename(file), path.resolve(file))]
        : await listCerts(config.secretsDir, flags.project ? config.project : undefined);
      if (flags.output === "json") return printJson({ secretsDir: config.secretsDir, certs });
      printText(certs);
    });
}
