// Swarm target without a registry: every node gets the task images by `docker save | docker
// load` over its own Docker API before terraform apply; services then pin them by image id.
import type Docker from "dockerode";
import { ToolError, errorMessage } from "../kernel/errors.js";
import { dockerClient } from "./docker.js";

export interface NodeLoad {
  node: string;
  image: string;
  /** loaded: copied now; present: the node already had this image id. */
  result: "loaded" | "present";
  ms: number;
}

async function hasImage(docker: Docker, id: string): Promise<boolean> {
  try {
    await docker.getImage(id).inspect();
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies each image (by tag, verified by id) from `source` to every node that lacks it.
 * Nodes load in parallel; one node failing fails the whole distribution (nothing is applied).
 */
export async function distributeImages(
  source: Docker,
  nodes: string[],
  images: { tag: string; id: string }[],
  onLoad: (l: NodeLoad) => void = () => {},
): Promise<NodeLoad[]> {
  const out: NodeLoad[] = [];
  await Promise.all(
    nodes.map(async (node) => {
      const target = dockerClient({ dockerHost: node });
      for (const image of images) {
        const t0 = Date.now();
        if (await hasImage(target, image.id)) {
          const l: NodeLoad = { node, image: image.tag, result: "present", ms: Date.now() - t0 };
          out.push(l);
          onLoad(l);
          continue;
        }
        try {
          const tar = await source.getImage(image.tag).get();
          const res = await target.loadImage(tar, { quiet: true });
          await new Promise<void>((resolve, reject) => {
            target.modem.followProgress(res, (err: Error | null) =>
              err ? reject(err) : resolve(),
            );
          });
        } catch (err) {
          throw new ToolError(
            `loading ${image.tag} into swarm node ${node} failed: ${errorMessage(err)}`,
            "check that IAC_SWARM_NODES lists reachable Docker endpoints of the nodes, " +
              "or configure a registry (IAC_REGISTRY) the nodes can pull from",
          );
        }
        if (!(await hasImage(target, image.id))) {
          throw new ToolError(
            `swarm node ${node} has no image ${image.id} after loading ${image.tag}`,
            "the node's engine rewrote the image (storage driver?); use a registry (IAC_REGISTRY)",
          );
        }
        const l: NodeLoad = { node, image: image.tag, result: "loaded", ms: Date.now() - t0 };
        out.push(l);
        onLoad(l);
      }
    }),
  );
  return out;
}
