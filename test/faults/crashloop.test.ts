// Scenario 2 of issue 18: a crash-looping main() must never be reported SERVING, and a failing
// one must be reported FAILED (with its exit code and phase) within seconds, not at the health
// timeout (set to 120 s here, longer than this test may take).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CRASH, FaultProject, SERVE, docker, parseReport, removeFaultImages } from "./harness.js";

const p = new FaultProject();

beforeAll(async () => {
  await p.setup({ ok: SERVE, crash: CRASH });
});
afterAll(async () => {
  await p.cleanup();
  await removeFaultImages(p.slugs);
});

describe("fault: crash-looping main()", () => {
  it("reports the crash loop FAILED with exit code 3 and the healthy service SERVING", async () => {
    const res = await p.deploy();
    expect(res.code, res.stderr).toBe(1);
    const report = parseReport(res.stdout);
    const ok = report.services.find((s) => s.name === "ok")!;
    const crash = report.services.find((s) => s.name === "crash")!;
    expect(ok.status).toBe("SERVING");
    expect(crash.status).toBe("FAILED");
    expect(crash.error).toMatch(/exited with code 3/);
    expect(crash.error).toMatch(/phase \w+/);
    expect(crash.error).not.toMatch(/did not answer within/);
  }, 240_000);

  it("rotates every container's Docker log (json-file max-size / max-file)", async () => {
    for (const name of [`${p.project}-ok`, `${p.project}-crash`]) {
      const info = await docker.getContainer(name).inspect();
      expect(info.HostConfig.LogConfig).toEqual({
        Type: "json-file",
        Config: { "max-size": "10m", "max-file": "3" },
      });
    }
  });
});
