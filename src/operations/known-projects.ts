// Which projects this machine knows: a state folder with applied tfvars or recorded releases,
// or containers labelled with the project. An unknown name is a NotFoundError (exit 2) that
// lists the known ones, raised before anything is created for the typo.
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../kernel/config.js";
import { NotFoundError } from "../kernel/errors.js";
import { dockerClient } from "../platform/docker.js";
import { releasesPath } from "../stack/releases.js";
import { tfvarsPath } from "../stack/tfvars.js";

/** Projects with applied state or releases under the state directory (no Docker needed). */
export async function projectsOnDisk(config: Pick<Config, "stateDir">): Promise<string[]> {
  const entries = await readdir(config.stateDir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter((name) => {
      const dir = path.join(config.stateDir, name);
      return existsSync(tfvarsPath(dir)) || existsSync(releasesPath(dir));
    });
}

/** Projects on disk plus those whose containers carry the io.iac.project label. */
export async function knownProjects(config: Config): Promise<string[]> {
  const names = new Set(await projectsOnDisk(config));
  const containers = await dockerClient(config).listContainers({
    all: true,
    filters: { label: ["io.iac.project"] },
  });
  for (const c of containers) if (c.Labels["io.iac.project"]) names.add(c.Labels["io.iac.project"]);
  return [...names].sort();
}

/** The NotFoundError for `project`, naming the projects that exist. */
export async function unknownProject(
  config: Config,
  project: string,
  command: string,
): Promise<NotFoundError> {
  const known = await knownProjects(config);
  return new NotFoundError(
    `no project '${project}': nothing deployed under that name`,
    known.length
      ? `known projects: ${known.join(", ")} (iac ${command} --project NAME)`
      : "no project is deployed on this machine",
  );
}

/** Throws unknownProject() unless `project` has state or releases on disk. */
export async function assertProjectOnDisk(
  config: Config,
  project: string,
  command: string,
): Promise<void> {
  if (!(await projectsOnDisk(config)).includes(project))
    throw await unknownProject(config, project, command);
}
