// Swarm target with a registry (IAC_REGISTRY): task images are pushed from the manager's
// engine and the nodes pull them, pinned by the digest the registry reported.
import type Docker from "dockerode";
import { ToolError, errorMessage } from "../kernel/errors.js";

export interface PushedImage {
  /** The local tag that was pushed. */
  tag: string;
  /** `<registry>/<repo>@sha256:…`: what services reference, immutable. */
  ref: string;
  ms: number;
}

interface PushMessage {
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Digest?: string };
}

/** The repository path of a local tag under `registry` (`iac/alpha-task:abc` -> `reg/iac/alpha-task`). */
export function registryRepo(registry: string, tag: string): { repo: string; version: string } {
  const at = tag.lastIndexOf(":");
  const name = at > tag.lastIndexOf("/") ? tag.slice(0, at) : tag;
  const version = at > tag.lastIndexOf("/") ? tag.slice(at + 1) : "latest";
  return { repo: `${registry.replace(/\/+$/, "")}/${name}`, version };
}

/** Tags each image into `registry` and pushes it; resolves with the digest-pinned references. */
export async function pushImages(
  docker: Docker,
  registry: string,
  tags: string[],
  onPush: (p: PushedImage) => void = () => {},
): Promise<PushedImage[]> {
  const out: PushedImage[] = [];
  for (const tag of tags) {
    const t0 = Date.now();
    const { repo, version } = registryRepo(registry, tag);
    let digest: string | undefined;
    let failure: string | undefined;
    try {
      await docker.getImage(tag).tag({ repo, tag: version });
      // An empty X-Registry-Auth ({}): anonymous push; the engine requires the header.
      const stream = await docker.getImage(`${repo}:${version}`).push({ authconfig: {} } as object);
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (msg: PushMessage) => {
            if (msg.error) failure = msg.errorDetail?.message ?? msg.error;
            if (msg.aux?.Digest) digest = msg.aux.Digest;
          },
        );
      });
    } catch (err) {
      failure ??= errorMessage(err);
    }
    if (failure || !digest) {
      throw new ToolError(
        `pushing ${tag} to ${registry} failed: ${failure ?? "the registry reported no digest"}`,
        "check IAC_REGISTRY (host[:port][/path]) and that the manager's engine may push there " +
          "(docker login; a plain-HTTP registry must be in the engine's insecure-registries), " +
          "or unset IAC_REGISTRY to copy images to IAC_SWARM_NODES instead",
      );
    }
    const pushed = { tag, ref: `${repo}@${digest}`, ms: Date.now() - t0 };
    out.push(pushed);
    onPush(pushed);
  }
  return out;
}
