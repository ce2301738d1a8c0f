#!/usr/bin/env node
// Entry point of `iac` (package.json `bin`, `npx iac`, the link bootstrap makes): runs the
// compiled CLI in dist/ (`npm run build`; bootstrap and make build it). A dist/ that does not
// match src/ is never run silently: it is rebuilt first (saying so on stderr), or, when that
// is impossible (no esbuild, read-only checkout), iac refuses with what to run.
import { build, freshness, ROOT } from "../scripts/build.mjs";

const state = freshness();
if (!state.fresh) {
  const what = state.changed.length
    ? `${state.reason} (changed: ${state.changed.slice(0, 3).join(", ")}${state.changed.length > 3 ? `, +${state.changed.length - 3} more` : ""})`
    : state.reason;
  try {
    const ms = await build();
    process.stderr.write(`iac: ${what}: rebuilt dist/ in ${(ms / 1000).toFixed(2)} s\n`);
  } catch (err) {
    process.stderr.write(
      `iac: error: ${what}, and rebuilding failed: ${err.message}\n` +
        `  run \`npm run build\` in ${ROOT} (or \`make deps\`), then try again\n`,
    );
    process.exit(2);
  }
}
await import("../dist/cli/main.js");
