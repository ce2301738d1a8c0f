// `iac plan` reads terraform's machine-readable UI (`plan -json`) instead of a second process
// (`show -json`): the lines below are terraform 1.11.4's own output for a replaced container.
import { describe, expect, it } from "vitest";
import { JsonUiPlan } from "../../src/stack/terraform.js";

const REPLACE = [
  '{"@level":"info","@message":"Terraform 1.11.4","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:15.743616Z","terraform":"1.11.4","type":"version","ui":"1.2"}',
  '{"@level":"info","@message":"data.docker_network.mesh: Refreshing...","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.033318Z","hook":{"resource":{"addr":"data.docker_network.mesh","module":"","resource":"data.docker_network.mesh","implied_provider":"docker","resource_type":"docker_network","resource_name":"mesh","resource_key":null},"action":"read"},"type":"apply_start"}',
  '{"@level":"info","@message":"data.docker_network.mesh: Refresh complete after 0s [id=5b01f09eadcdfbba1bd4a604c2c697560c64e6442dbfee00aa56e1f9e76778b9]","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.043114Z","hook":{"resource":{"addr":"data.docker_network.mesh","module":"","resource":"data.docker_network.mesh","implied_provider":"docker","resource_type":"docker_network","resource_name":"mesh","resource_key":null},"action":"read","id_key":"id","id_value":"5b01f09eadcdfbba1bd4a604c2c697560c64e6442dbfee00aa56e1f9e76778b9","elapsed_seconds":0},"type":"apply_complete"}',
  '{"@level":"info","@message":"docker_container.app[\\"svc\\"]: Refreshing state... [id=94dc5a70a863317169ae114ddf8b9c46a8c6d637c0cfe879b13b2e48d9bb1047]","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.052697Z","hook":{"resource":{"addr":"docker_container.app[\\"svc\\"]","module":"","resource":"docker_container.app[\\"svc\\"]","implied_provider":"docker","resource_type":"docker_container","resource_name":"app","resource_key":"svc"},"id_key":"id","id_value":"94dc5a70a863317169ae114ddf8b9c46a8c6d637c0cfe879b13b2e48d9bb1047"},"type":"refresh_start"}',
  '{"@level":"info","@message":"docker_container.app[\\"svc\\"]: Refresh complete [id=94dc5a70a863317169ae114ddf8b9c46a8c6d637c0cfe879b13b2e48d9bb1047]","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.063719Z","hook":{"resource":{"addr":"docker_container.app[\\"svc\\"]","module":"","resource":"docker_container.app[\\"svc\\"]","implied_provider":"docker","resource_type":"docker_container","resource_name":"app","resource_key":"svc"},"id_key":"id","id_value":"94dc5a70a863317169ae114ddf8b9c46a8c6d637c0cfe879b13b2e48d9bb1047"},"type":"refresh_complete"}',
  '{"@level":"info","@message":"docker_container.app[\\"svc\\"]: Drift detected (update)","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.102371Z","change":{"resource":{"addr":"docker_container.app[\\"svc\\"]","module":"","resource":"docker_container.app[\\"svc\\"]","implied_provider":"docker","resource_type":"docker_container","resource_name":"app","resource_key":"svc"},"action":"update"},"type":"resource_drift"}',
  '{"@level":"info","@message":"docker_container.app[\\"svc\\"]: Plan to replace","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.102541Z","change":{"resource":{"addr":"docker_container.app[\\"svc\\"]","module":"","resource":"docker_container.app[\\"svc\\"]","implied_provider":"docker","resource_type":"docker_container","resource_name":"app","resource_key":"svc"},"action":"replace","reason":"cannot_update"},"type":"planned_change"}',
  '{"@level":"info","@message":"Plan: 1 to add, 0 to change, 1 to destroy.","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.102551Z","changes":{"add":1,"change":0,"import":0,"remove":1,"operation":"plan"},"type":"change_summary"}',
  '{"@level":"info","@message":"Outputs: 2","@module":"terraform.ui","@timestamp":"2026-12-02T09:58:16.102581Z","outputs":{"network":{"sensitive":false,"action":"noop"},"services":{"sensitive":false,"action":"update"}},"type":"outputs"}',
];

describe("terraform plan -json", () => {
  it("gives the actions show -json would (a replace is delete + create), and each line's text", () => {
    const ui = new JsonUiPlan();
    const text = REPLACE.map((l) => ui.line(l));
    expect(text).toContain('docker_container.app["svc"]: Plan to replace (cannot_update)');
    expect(text).toContain("Plan: 1 to add, 0 to change, 1 to destroy.");
    // drift is reported, but it is not a planned change
    expect(text).toContain('docker_container.app["svc"]: Drift detected (update)');
    expect(ui.summary(true, "tfplan")).toEqual({
      changes: true,
      planFile: "tfplan",
      add: 1,
      change: 0,
      destroy: 1,
      containersRecreated: ['docker_container.app["svc"]'],
      resources: [{ address: 'docker_container.app["svc"]', actions: ["delete", "create"] }],
    });
  });

  it("passes a line that is not JSON as it is, shows a diagnostic with its detail", () => {
    const ui = new JsonUiPlan();
    expect(ui.line("panic: something")).toBe("panic: something");
    const diag = JSON.stringify({
      "@level": "error",
      "@message": "Error: Invalid value for input variable",
      type: "diagnostic",
      diagnostic: {
        severity: "error",
        summary: "Invalid value for input variable",
        detail: "project must be\na DNS label.",
      },
    });
    expect(ui.line(diag)).toBe(
      "Error: Invalid value for input variable: project must be a DNS label.",
    );
    expect(ui.summary(false, "tfplan")).toMatchObject({ changes: false, add: 0, resources: [] });
  });
});
