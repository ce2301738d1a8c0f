// iac plan's per-service actions, in Terraform's vocabulary.
import { describe, expect, it } from "vitest";
import { countActions, serviceAction, summaryLine } from "../../src/operations/plan-actions.js";
import type { StackService } from "../../src/stack/tfvars.js";

const svc: StackService = {
  image: "iac/api:aaa",
  slug: "gh:o/api",
  commit: "a3196c0000000000000000000000000000000000",
  host_port: 40001,
  cert_dir: "/s/api",
  envoy_config: "/e/api.yaml",
  env: { A: "1" },
  memory_mb: 512,
  cpus: "1",
  pids: 256,
  config_hash: "h1",
};

describe("serviceAction", () => {
  it.each([
    ["new", undefined, svc, "+ new"],
    ["removed", svc, undefined, "- remove"],
    [
      "new commit",
      svc,
      { ...svc, commit: "dee6c70000000000000000000000000000000000", image: "iac/api:bbb" },
      "~ update (commit a3196c → dee6c7)",
    ],
    [
      "same commit, new image",
      svc,
      { ...svc, image: "iac/api:ccc" },
      "-/+ replace (image changed)",
    ],
    [
      "new cert or envoy config",
      svc,
      { ...svc, config_hash: "h2" },
      "-/+ replace (config changed)",
    ],
    ["env", svc, { ...svc, env: { A: "2" } }, "-/+ replace (env changed)"],
    ["identical", svc, { ...svc }, "= unchanged"],
  ])("%s -> %s", (_what, before, after, text) => {
    expect(serviceAction("api", before, after).text).toBe(text);
  });

  it("reports drift terraform found even when the stack did not change", () => {
    const a = serviceAction("api", svc, { ...svc }, [
      { address: 'docker_container.app["api"]', actions: ["delete", "create"] },
    ]);
    expect(a).toMatchObject({ kind: "replace", reason: "drift: changed outside iac" });
    // Another service's resources are not this one's drift.
    const b = serviceAction("api", svc, { ...svc }, [
      { address: 'docker_container.app["api2"]', actions: ["delete", "create"] },
    ]);
    expect(b.kind).toBe("unchanged");
  });
});

describe("summaryLine", () => {
  it("counts each action and the images a deploy would build", () => {
    const actions = [
      serviceAction("a", undefined, svc),
      serviceAction("b", svc, { ...svc }),
      serviceAction("c", svc, undefined),
    ];
    expect(summaryLine(countActions(actions), 1)).toBe(
      "Services: 1 new, 0 to update, 0 to replace, 1 unchanged, 1 to remove; 1 image would be built.",
    );
    expect(summaryLine(countActions([]), 0)).toMatch(/no image to build\.$/);
  });
});
