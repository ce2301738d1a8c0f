// The image's Dockerfile: infra/templates/app.Dockerfile.tmpl with the entrypoint filled in
// (exec form behind the runner, which is PID 1 in every app image) and only the steps the app
// needs: the project's own `pip install` only when the entrypoint needs the project installed.
import path from "node:path";
import { CONTAINER_PATHS } from "../kernel/contract.js";
import { IacError } from "../kernel/errors.js";
import type { Entrypoint } from "../kernel/types.js";
import { REPO_ROOT } from "./wheelhouse.js";

export const TEMPLATE_FILE = path.join(REPO_ROOT, "infra", "templates", "app.Dockerfile.tmpl");
export const RUNNER_ENTRYPOINT = [CONTAINER_PATHS.runnerPython, "-m", "iac_runner", "--"];
export const DOCKERFILE_NAME = "iac.Dockerfile";

/** `#{{#NAME}}` ... `#{{/NAME}}` (kept when on) and `#{{^NAME}}` ... `#{{/NAME}}` (when off). */
function renderSections(template: string, name: string, on: boolean): string {
  const out: string[] = [];
  let open: "#" | "^" | undefined;
  for (const line of template.split("\n")) {
    const m = /^#\{\{([#^/])([A-Z_]+)\}\}$/.exec(line.trim());
    if (m && m[2] === name) {
      if (m[1] === "/") {
        if (!open) throw new IacError(`${TEMPLATE_FILE}: "${line}" closes no section`);
        open = undefined;
      } else {
        if (open) throw new IacError(`${TEMPLATE_FILE}: section ${name} opened twice`);
        open = m[1] as "#" | "^";
      }
      continue;
    }
    if (open === undefined || (open === "#") === on) out.push(line);
  }
  if (open) throw new IacError(`${TEMPLATE_FILE}: section ${name} is not closed`);
  return out.join("\n");
}

export function renderDockerfile(
  template: string,
  entrypoint: Pick<Entrypoint, "argv"> & { installProject?: boolean },
): string {
  if (entrypoint.argv.length === 0) throw new IacError("entrypoint argv is empty");
  if (entrypoint.argv.some((a) => a.includes("\0"))) {
    throw new IacError("entrypoint argv contains a NUL byte");
  }
  // Exec form: a JSON array on one line (JSON.stringify escapes newlines and quotes).
  const json = JSON.stringify([...RUNNER_ENTRYPOINT, ...entrypoint.argv]);
  const line = /^ENTRYPOINT \{\{ENTRYPOINT_JSON\}\}$/m;
  if (!line.test(template)) {
    throw new IacError(`${TEMPLATE_FILE} lacks the line "ENTRYPOINT {{ENTRYPOINT_JSON}}"`);
  }
  const text = renderSections(template, "INSTALL_PROJECT", entrypoint.installProject ?? false);
  return text.replace(line, () => `ENTRYPOINT ${json}`);
}
