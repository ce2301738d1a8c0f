// The image's Dockerfile: infra/templates/app.Dockerfile.tmpl with the entrypoint filled in
// (exec form behind the runner, which is PID 1 in every app image).
import path from "node:path";
import { CONTAINER_PATHS } from "../kernel/contract.js";
import { IacError } from "../kernel/errors.js";
import type { Entrypoint } from "../kernel/types.js";
import { REPO_ROOT } from "./wheelhouse.js";

export const TEMPLATE_FILE = path.join(REPO_ROOT, "infra", "templates", "app.Dockerfile.tmpl");
export const RUNNER_ENTRYPOINT = [CONTAINER_PATHS.runnerPython, "-m", "iac_runner", "--"];
export const DOCKERFILE_NAME = "iac.Dockerfile";

export function renderDockerfile(template: string, entrypoint: Pick<Entrypoint, "argv">): string {
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
  return template.replace(line, () => `ENTRYPOINT ${json}`);
}
