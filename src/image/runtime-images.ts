// The two runtime images every deploy needs -- the app base (python:3.11-slim) and the Envoy
// sidecar (envoyproxy/envoy:v1.40.0) -- obtained the way a real machine gets them:
//   use it if present -> `docker pull` it (bounded) -> only when the pull fails, build the local
//   substitute from packages (images/<role>/build.sh).
// The one implementation of that order: the CLI's preflight (deploy, plan) and
// scripts/bootstrap.sh (`iac images --record`) both call ensureRuntimeImages().
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  bootstrapRecordPath,
  inheritedEnv,
  type Config,
  type SettingOrigin,
} from "../kernel/config.js";
import { DEFAULT_IMAGES } from "../kernel/contract.js";
import { IacError, ToolError, errorMessage } from "../kernel/errors.js";
import { dockerClient } from "../platform/docker.js";
import { runTool } from "../platform/exec.js";
import { writeFileAtomic } from "../platform/fs.js";

const IMAGES_DIR = fileURLToPath(new URL("../../images/", import.meta.url));

export type ImageRole = "base" | "envoy";

export class ImageError extends IacError {
  override name = "ImageError";
}

export interface Substitute {
  role: ImageRole;
  /** The official image it stands in for. */
  official: string;
  /** The tag the recipe builds (never pulled: nobody publishes it). */
  local: string;
  /** images/<recipe>/: build.sh and what it uses; their content is the recipe id. */
  recipeFiles: string[];
  /**
   * Rebuild a present substitute whose io.iac.recipe label differs. Not for the base: every
   * app image's tag depends on the base image id, so it is kept once present.
   */
  rebuildWhenStale: boolean;
}

export const SUBSTITUTES: readonly Substitute[] = [
  {
    role: "base",
    official: DEFAULT_IMAGES.base,
    local: "iac-local/python:3.11-slim",
    recipeFiles: ["base/build.sh"],
    rebuildWhenStale: false,
  },
  {
    role: "envoy",
    official: DEFAULT_IMAGES.envoy,
    local: "iac-local/envoy:v1.40.0",
    recipeFiles: ["envoy/build.sh", "envoy/Dockerfile", "envoy/requirements.txt"],
    rebuildWhenStale: true,
  },
];

export function substituteFor(role: ImageRole, ref: string): Substitute | undefined {
  return SUBSTITUTES.find((s) => s.role === role && (s.official === ref || s.local === ref));
}

/** What was chosen and why; `reason` is what bootstrap and the preflight print. */
export interface ImageChoice {
  role: ImageRole;
  /** The configured image. */
  requested: string;
  /** The image to use (the requested one, or its local substitute). */
  image: string;
  how: "present" | "pulled" | "substitute-present" | "substitute-built";
  reason: string;
  pullError?: string;
  seconds: number;
}

/** One line: which image, why; `origin` says where the configured name came from. */
export function describeChoice(c: ImageChoice, origins?: Record<string, SettingOrigin>): string {
  const key = c.role === "base" ? "IAC_BASE_IMAGE" : "IAC_ENVOY_IMAGE";
  const origin = origins?.[key];
  const from =
    origin === "bootstrap"
      ? ` (${key} recorded by make bootstrap)`
      : origin && origin !== "default"
        ? ` (${key} from ${origin === ".env" ? ".env" : origin === "flag" ? "a flag" : "the environment"})`
        : "";
  return `${c.role} image ${c.image}${from}: ${c.reason}`;
}

/** The Docker side of the order; the real one is dockerBackend(), tests pass their own. */
export interface ImageBackend {
  /** The image's labels, or undefined when it is not present locally. */
  inspect(ref: string): Promise<{ labels: Record<string, string> } | undefined>;
  /** `docker pull`; rejects with the reason. */
  pull(ref: string): Promise<void>;
  /** Runs the substitute's recipe; rejects with the reason. */
  build(sub: Substitute, opts: { base: string; recipeId: string }): Promise<void>;
}

export async function recipeId(sub: Substitute): Promise<string> {
  const h = createHash("sha256");
  for (const f of sub.recipeFiles)
    h.update(f)
      .update("\0")
      .update(await readFile(path.join(IMAGES_DIR, f)))
      .update("\0");
  return h.digest("hex").slice(0, 16);
}

const secondsSince = (t0: number) => Math.round((Date.now() - t0) / 100) / 10;

/** The order for one image. `base` is the base image the Envoy recipe builds on. */
export async function ensureImage(
  role: ImageRole,
  requested: string,
  backend: ImageBackend,
  opts: { base?: string } = {},
): Promise<ImageChoice> {
  const t0 = Date.now();
  const done = (
    how: ImageChoice["how"],
    image: string,
    reason: string,
    pullError?: string,
  ): ImageChoice => ({ role, requested, image, how, reason, pullError, seconds: secondsSince(t0) });
  const sub = substituteFor(role, requested);

  /** `why` is how we got here: a failed pull, or the local name configured directly. */
  const useSubstitute = async (s: Substitute, why: string | undefined, pullError?: string) => {
    const id = await recipeId(s);
    const have = await backend.inspect(s.local);
    const stale = have && s.rebuildWhenStale && have.labels["io.iac.recipe"] !== id;
    const prefix = why ? `${why} -> ` : "";
    if (have && !stale) {
      const reason = why
        ? `${why} -> local substitute present`
        : `present (local substitute for ${s.official}, never pulled)`;
      return done("substitute-present", s.local, reason, pullError);
    }
    const t1 = Date.now();
    try {
      await backend.build(s, { base: opts.base ?? "", recipeId: id });
    } catch (err) {
      throw new ImageError(
        `${role} image ${requested}: ${prefix}building the local substitute ${s.local} failed: ${errorMessage(err)}`,
        `make ${s.official} available (docker pull / docker load, a registry mirror), or fix the cause above and re-run \`make bootstrap\``,
        { cause: err },
      );
    }
    if (!(await backend.inspect(s.local)))
      throw new ImageError(
        `${role} image: the recipe for ${s.local} finished but the image is not there`,
      );
    const what = stale
      ? "local substitute was built by another recipe -> rebuilt"
      : why
        ? "built local substitute"
        : "absent -> built local substitute";
    return done(
      "substitute-built",
      s.local,
      `${prefix}${what} in ${secondsSince(t1)} s`,
      pullError,
    );
  };

  // A substitute's own name is never pulled: nobody publishes it, and a registry might.
  if (sub && requested === sub.local) return useSubstitute(sub, undefined);
  if (await backend.inspect(requested)) return done("present", requested, "present");
  let pullError: string;
  try {
    await backend.pull(requested);
    return done("pulled", requested, `pulled in ${secondsSince(t0)} s`);
  } catch (err) {
    pullError = errorMessage(err);
  }
  if (!sub) {
    throw new ImageError(
      `${role} image ${requested} is not present locally and \`docker pull\` failed: ${pullError}`,
      `load it (docker load / a registry mirror), or configure one of the defaults (${SUBSTITUTES.filter(
        (s) => s.role === role,
      )
        .map((s) => s.official)
        .join(", ")}), ` + "which have local substitutes for machines without a registry",
    );
  }
  return useSubstitute(sub, `pull of ${requested} failed (${pullError})`, pullError);
}

/** Which images a deploy with this config needs. */
export function rolesFor(config: Pick<Config, "sidecar">): ImageRole[] {
  return config.sidecar === "envoy" ? ["base", "envoy"] : ["base"];
}

/**
 * Ensures the images of `roles` (base first: the Envoy substitute builds on it) and returns the
 * config to deploy with (baseImage / envoyImage replaced by what is actually used).
 */
export async function ensureRuntimeImages<C extends Pick<Config, "baseImage" | "envoyImage">>(
  config: C,
  roles: ImageRole[],
  backend: ImageBackend,
  onChoice: (c: ImageChoice) => void = () => {},
): Promise<{ config: C; choices: ImageChoice[] }> {
  const choices: ImageChoice[] = [];
  // The Envoy substitute needs a base even when only the sidecar was asked for.
  const base = await ensureImage("base", config.baseImage, backend);
  if (roles.includes("base")) {
    choices.push(base);
    onChoice(base);
  }
  let envoyImage = config.envoyImage;
  if (roles.includes("envoy")) {
    const envoy = await ensureImage("envoy", config.envoyImage, backend, { base: base.image });
    choices.push(envoy);
    onChoice(envoy);
    envoyImage = envoy.image;
  }
  return { config: { ...config, baseImage: base.image, envoyImage }, choices };
}

// ------------------------------------------------------------------ the real backend

/** argv of the pull (the docker CLI: it honours the user's credential helpers and mirrors). */
export function pullArgv(ref: string): string[] {
  return ["docker", "pull", ref];
}

/** argv of a substitute's recipe. */
export function recipeArgv(
  sub: Substitute,
  config: Pick<Config, "cacheDir" | "debianMirror">,
  opts: { base: string; recipeId: string },
): string[] {
  const script = path.join(IMAGES_DIR, sub.role, "build.sh");
  return sub.role === "envoy"
    ? ["bash", script, sub.local, opts.base, config.cacheDir, opts.recipeId]
    : [
        "bash",
        script,
        sub.local,
        config.debianMirror,
        path.join(config.cacheDir, "debootstrap.log"),
        opts.recipeId,
      ];
}

/** Short reason out of docker's output ("Error response from daemon: " removed). */
function lastLine(lines: string[]): string {
  const line = [...lines].reverse().find((l) => l.trim()) ?? "no output";
  return line.replace(/^Error response from daemon:\s*/, "").trim();
}

export function dockerBackend(
  config: Pick<Config, "dockerHost" | "cacheDir" | "debianMirror" | "pullTimeoutMs">,
  onLine: (line: string) => void = () => {},
): ImageBackend {
  const docker = dockerClient(config);
  // The docker CLI and the recipes inherit the environment (docker's and pip's own settings:
  // DOCKER_CONFIG, proxies, pip.conf); DOCKER_HOST follows the config.
  const env = inheritedEnv(config.dockerHost ? { DOCKER_HOST: config.dockerHost } : {});
  return {
    async inspect(ref) {
      try {
        const info = await docker.getImage(ref).inspect();
        return { labels: info.Config?.Labels ?? {} };
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        throw new ToolError(
          `cannot inspect image ${ref}: ${errorMessage(err)}`,
          "is the Docker engine running? `make bootstrap` starts one (or set DOCKER_HOST)",
          { cause: err },
        );
      }
    },
    async pull(ref) {
      // Progress lines only: the error line becomes the reason.
      const progressLine = (line: string) => {
        if (!line.startsWith("Error response from daemon")) onLine(line);
      };
      const res = await runTool(pullArgv(ref), {
        env,
        timeoutMs: config.pullTimeoutMs,
        onLine: progressLine,
      });
      if (res.timedOut)
        throw new Error(`no result within ${config.pullTimeoutMs / 1000} s (IAC_PULL_TIMEOUT_S)`);
      if (res.code !== 0) throw new Error(lastLine(res.output));
    },
    async build(sub, opts) {
      const res = await runTool(recipeArgv(sub, config, opts), {
        env,
        timeoutMs: 20 * 60_000,
        onLine,
      });
      if (res.timedOut) throw new Error("the recipe did not finish within 20 min");
      if (res.code !== 0) throw new Error(lastLine(res.output).replace(/^\[[a-z-]+\] ERROR: /, ""));
    },
  };
}

// ------------------------------------------------------------------ the bootstrap record

/**
 * Records what bootstrap provisioned (cache dir, bootstrap.json); loadSystemConfig() reads
 * `settings` as defaults below the environment and .env.
 */
export async function writeBootstrapRecord(
  cacheDir: string,
  choices: ImageChoice[],
  earlier: Record<string, string> = {},
): Promise<string> {
  const file = bootstrapRecordPath(cacheDir);
  const settings: Record<string, string> = { ...earlier };
  for (const c of choices)
    settings[c.role === "base" ? "IAC_BASE_IMAGE" : "IAC_ENVOY_IMAGE"] = c.image;
  const doc = {
    comment: "Written by scripts/bootstrap.sh (iac images --record). Defaults below env and .env.",
    written: new Date().toISOString(),
    settings,
    images: choices,
  };
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + "\n");
  return file;
}
