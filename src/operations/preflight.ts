// Checks before any work starts: unique service names, the runtime images (present, pulled,
// or built locally). Each fails with an error saying what to do.
import type { Config } from "../kernel/config.js";
import { UsageError } from "../kernel/errors.js";
import { type EventSink, logEvent, stageEvent } from "../kernel/events.js";
import {
  describeChoice,
  dockerBackend,
  ensureRuntimeImages,
  rolesFor,
} from "../image/runtime-images.js";
import type { ServiceSpec } from "../kernel/types.js";

export function assertUniqueNames(services: ServiceSpec[]): void {
  const seen = new Map<string, string>();
  for (const s of services) {
    const other = seen.get(s.name);
    if (other) {
      throw new UsageError(
        `two services are named '${s.name}' (${other} and ${s.slug.raw})`,
        "give one of them a distinct `name:` in the repos file",
      );
    }
    seen.set(s.name, s.slug.raw);
  }
}

/**
 * The images this deploy needs (the base; Envoy with sidecars): present -> docker pull ->
 * local substitute (image/runtime-images.ts), each reported as an "images" event saying which
 * image and why. Returns the config with the images actually used.
 */
export async function resolveImages(config: Config, onEvent: EventSink): Promise<Config> {
  const backend = dockerBackend(config, (line) => onEvent(logEvent("pipeline", line)));
  const { config: resolved } = await ensureRuntimeImages(config, rolesFor(config), backend, (c) =>
    onEvent(stageEvent("images", undefined, describeChoice(c, config.origins))),
  );
  return resolved;
}
