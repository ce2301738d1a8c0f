// Which states `iac destroy` empties without terraform (issue 14): only containers and images
// Terraform would keep; anything else is left to terraform, with the reason.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fastDestroyPlan } from "../../src/operations/destroy-fast.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "iac-destroy-fast-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const container = (name: string, id: string) => ({
  mode: "managed",
  type: "docker_container",
  name: "app",
  instances: [{ index_key: name, attributes: { id, name: `p-${name}` } }],
});
const image = (keep: boolean) => ({
  mode: "managed",
  type: "docker_image",
  name: "app",
  instances: [{ index_key: "a", attributes: { id: "sha256:x", keep_locally: keep } }],
});
const network = { mode: "data", type: "docker_network", name: "mesh", instances: [{}] };

async function state(resources: unknown[]): Promise<void> {
  const doc = {
    version: 4,
    terraform_version: "1.11.4",
    serial: 7,
    lineage: "l",
    outputs: {},
    resources,
  };
  await writeFile(path.join(dir, "terraform.tfstate"), JSON.stringify(doc));
}

describe("fastDestroyPlan", () => {
  it("takes containers, kept images and data sources, listing the containers", async () => {
    await state([network, image(true), container("a", "c1"), container("b", "c2")]);
    const plan = await fastDestroyPlan(dir);
    expect(plan.fast).toBe(true);
    if (plan.fast)
      expect(plan.containers).toEqual([
        { id: "c1", name: "p-a" },
        { id: "c2", name: "p-b" },
      ]);
  });

  const refused: [string, () => Promise<void>, RegExp][] = [
    ["no state file", async () => undefined, /no state file/],
    [
      "a broken state file",
      () => writeFile(path.join(dir, "terraform.tfstate"), '{"version": 4, "resour'),
      /unusable/,
    ],
    ["an image terraform would delete", () => state([image(false)]), /would delete/],
    [
      "a resource type it does not know (an owned network of an older module)",
      () => state([{ mode: "managed", type: "docker_network", name: "mesh", instances: [{}] }]),
      /docker_network\.mesh is not a container/,
    ],
    [
      "a container without an id",
      () => state([{ ...container("a", ""), instances: [{ attributes: {} }] }]),
      /no container id/,
    ],
  ];
  for (const [what, make, reason] of refused) {
    it(`leaves ${what} to terraform, saying why`, async () => {
      await make();
      const plan = await fastDestroyPlan(dir);
      expect(plan.fast).toBe(false);
      if (!plan.fast) expect(plan.reason).toMatch(reason);
    });
  }
});
