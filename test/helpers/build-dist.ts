// vitest globalSetup: tests that run the real CLI spawn `node bin/iac.js`, which runs the
// compiled dist/. Build it once, before any test, when src/ changed since the last build, so
// no test process pays (or races on) the rebuild bin/iac.js would otherwise do.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export default function setup(): void {
  execFileSync(process.execPath, [path.join(ROOT, "scripts/build.mjs"), "--if-stale", "--quiet"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
}
