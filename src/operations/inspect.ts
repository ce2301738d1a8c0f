// The inspect pipeline: service specs -> fetch -> detect, bounded parallel, no Docker. One
// service failing is reported in its result and never stops the others.
import type { Config } from "../kernel/config.js";
import { detectEntrypoint } from "../detect/entrypoint.js";
import { deriveVersion } from "../detect/version.js";
import { errorMessage, formatError } from "../kernel/errors.js";
import { explainWithConfig } from "../platform/syserror.js";
import { type EventSink, noopSink, stageEvent } from "../kernel/events.js";
import { fetchSource } from "../source/fetch.js";
import { mapLimit } from "../platform/limit.js";
import type { BuildMode, EntrypointKind, ServiceSpec, Source } from "../kernel/types.js";
import { DEFAULT_RESOURCES, showResources } from "../intake/resources.js";

export interface InspectResult {
  name: string;
  /** The slug as written. */
  slug: string;
  /** The requested ref; "HEAD" = the default branch (or the work tree's HEAD for file:). */
  ref: string;
  /** The port the app serves its peers on (from the repos file). */
  port?: number;
  commit?: string;
  /** The version handed to the build (from a version tag, else 0.0.0+g<sha>): detect/version.ts. */
  version?: string;
  entrypoint?: { kind: EntrypointKind; argv: string[]; rule: string };
  installProject?: boolean;
  /** `dockerfile`: the image is built from the repo's own Dockerfile (+ the runner layer). */
  build?: BuildMode;
  /** Container limits the service will get (repos file `resources:` over the defaults). */
  resources: { memory: string; cpus: number; pids: number };
  error?: string;
  source?: Source;
}

const describe = (err: unknown): string => formatError(err, { oneLine: true });

export async function inspectService(
  spec: ServiceSpec,
  config: Config,
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
): Promise<InspectResult> {
  const result: InspectResult = {
    name: spec.name,
    slug: spec.slug.raw,
    ref: spec.slug.ref ?? "HEAD",
    resources: showResources(spec.resources ?? DEFAULT_RESOURCES),
  };
  if (spec.port !== undefined) result.port = spec.port;
  try {
    onEvent(stageEvent("fetch", spec.name, spec.slug.raw));
    const source = await fetchSource(spec.slug, { config, service: spec.name, onEvent, signal });
    result.commit = source.commit;
    result.version = deriveVersion(spec.slug.ref, source.commit).version;
    result.source = source;
    onEvent(
      stageEvent("detect", spec.name, `commit ${source.commit.slice(0, 12)} (${source.via})`),
    );
    const ep = await detectEntrypoint(source, spec);
    result.entrypoint = { kind: ep.kind, argv: ep.argv, rule: ep.rule };
    result.installProject = ep.installProject;
    result.build = ep.dockerfile ? "dockerfile" : "default";
    onEvent(stageEvent("done", spec.name, `${ep.kind}: ${ep.argv.join(" ")}`));
  } catch (caught) {
    const err = explainWithConfig(caught, config);
    result.error = describe(err);
    onEvent(stageEvent("failed", spec.name, errorMessage(err).split("\n")[0]));
  }
  return result;
}

/** Fetches and detects every service (config.concurrency at a time); results keep input order. */
export async function inspectServices(
  specs: ServiceSpec[],
  config: Config,
  onEvent: EventSink = noopSink,
  signal?: AbortSignal,
): Promise<InspectResult[]> {
  return mapLimit(specs, config.concurrency, (spec) =>
    inspectService(spec, config, onEvent, signal),
  );
}

type InspectJsonService = Pick<
  InspectResult,
  | "name"
  | "slug"
  | "ref"
  | "port"
  | "commit"
  | "version"
  | "entrypoint"
  | "build"
  | "resources"
  | "error"
>;

/** The JSON document of `iac inspect --output json` (DESIGN.md). */
export function inspectJson(results: InspectResult[]): { services: InspectJsonService[] } {
  return {
    services: results.map((r) => {
      const out: InspectJsonService = {
        name: r.name,
        slug: r.slug,
        ref: r.ref,
        resources: r.resources,
      };
      if (r.port !== undefined) out.port = r.port;
      if (r.commit) out.commit = r.commit;
      if (r.version) out.version = r.version;
      if (r.entrypoint) out.entrypoint = r.entrypoint;
      if (r.build === "dockerfile") out.build = r.build; // only then: the contract stays as it was
      if (r.error !== undefined) out.error = r.error;
      return out;
    }),
  };
}
