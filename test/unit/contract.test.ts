// The TypeScript side (kernel/contract.ts, kernel/names.ts) and the Terraform module, the
// templates and the runner must carry the same ports, uids, paths, images and naming rules.
// Reads the HCL/template/Python text and fails naming the file when one drifts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CONTAINER_PATHS, DEFAULT_IMAGES, PORTS, UIDS } from "../../src/kernel/contract.js";
import { DNS_LABEL_RE, appContainerName } from "../../src/kernel/names.js";
import { RUNNER_ENTRYPOINT } from "../../src/image/dockerfile.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const read = (rel: string) => readFileSync(path.join(ROOT, rel), "utf8");
const mainTf = read("infra/main.tf");
const variablesTf = read("infra/variables.tf");
const dockerfile = read("infra/templates/app.Dockerfile.tmpl");
const runnerConfig = read("runner/iac_runner/config.py");

/** The body of `resource "<type>" "<name>" { ... }` (braces balanced). */
function hclBlock(text: string, header: RegExp): string {
  const m = header.exec(text);
  if (!m) throw new Error(`no block ${header} in the HCL`);
  let depth = 0;
  for (let i = text.indexOf("{", m.index); i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(m.index, i + 1);
  }
  throw new Error(`unbalanced block ${header}`);
}
/** The string value of `key = "..."` in an HCL body. */
function hclString(body: string, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, "m").exec(body)?.[1];
}

const app = hclBlock(mainTf, /resource\s+"docker_container"\s+"app"\s*\{/);
const envoy = hclBlock(mainTf, /resource\s+"docker_container"\s+"envoy"\s*\{/);

describe("infra/main.tf carries kernel/contract.ts", () => {
  it("uids: app 10001, envoy 101", () => {
    expect(hclString(app, "user")).toBe(`${UIDS.app}:${UIDS.app}`);
    expect(hclString(envoy, "user")).toBe(`${UIDS.envoy}:${UIDS.envoy}`);
  });
  it("the cert mount and the Envoy config path", () => {
    expect(hclString(mainTf, "cert_mount")).toBe(CONTAINER_PATHS.certDir);
    expect(envoy).toContain(`"-c", "${CONTAINER_PATHS.envoyConfig}"`);
    expect(envoy).toMatch(new RegExp(`target\\s*=\\s*"${CONTAINER_PATHS.envoyConfig}"`));
  });
  it("the published port is the inbound (mTLS) port", () => {
    expect(app).toMatch(new RegExp(`internal\\s*=\\s*${PORTS.inbound}\\b`));
  });
  it("container names", () => {
    expect(hclString(app, "name")).toBe(appContainerName("${var.project}", "${each.key}"));
    expect(hclString(envoy, "name")).toBe(
      `${appContainerName("${var.project}", "${each.key}")}-envoy`,
    );
  });
});

describe("infra/variables.tf", () => {
  it("validates project with the same DNS-label rule", () => {
    const project = hclBlock(variablesTf, /variable\s+"project"\s*\{/);
    const m = /regex\("([^"]+)",\s*var\.project\)/.exec(project);
    expect(m?.[1]).toBe(DNS_LABEL_RE.source);
  });
  it("envoy_image defaults to the same image", () => {
    const v = hclBlock(variablesTf, /variable\s+"envoy_image"\s*\{/);
    expect(hclString(v, "default")).toBe(DEFAULT_IMAGES.envoy);
  });
});

describe("infra/templates/app.Dockerfile.tmpl", () => {
  it("creates and runs as the app uid", () => {
    expect(dockerfile).toContain(`--uid ${UIDS.app} --gid ${UIDS.app}`);
    expect(dockerfile).toMatch(new RegExp(`^USER ${UIDS.app}:${UIDS.app}$`, "m"));
  });
  it("exposes the app and inbound ports, and the runner python the entrypoint uses", () => {
    expect(dockerfile).toMatch(new RegExp(`^EXPOSE ${PORTS.app} ${PORTS.inbound}$`, "m"));
    expect(dockerfile).toContain(
      `python3 -m venv --without-pip ${path.dirname(path.dirname(CONTAINER_PATHS.runnerPython))}`,
    );
    expect(RUNNER_ENTRYPOINT[0]).toBe(CONTAINER_PATHS.runnerPython);
  });
});

describe("runner/iac_runner/config.py defaults", () => {
  it("TLS dir and ports", () => {
    expect(runnerConfig).toContain(`"${CONTAINER_PATHS.certDir}"`);
    expect(runnerConfig).toContain(
      `"127.0.0.1:${PORTS.app}" if sidecar == "envoy" else "0.0.0.0:${PORTS.inbound}"`,
    );
  });
});
