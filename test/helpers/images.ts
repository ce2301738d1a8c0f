// The runtime images the integration tests use: the ones `iac` would use (flags > environment >
// .env > bootstrap record > defaults), obtained in the same order (present -> docker pull ->
// local substitute) by the same code. A test that needs one and cannot have it FAILS with the
// reason; nothing is skipped for a missing image.
import path from "node:path";
import { loadSystemConfig } from "../../src/kernel/config.js";
import {
  describeChoice,
  dockerBackend,
  ensureRuntimeImages,
  type ImageChoice,
} from "../../src/image/runtime-images.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** The CLI's config as seen from the repository root. */
export const systemConfig = () => loadSystemConfig({}, { cwd: ROOT });

let memo: Promise<{ base: ImageChoice; envoy: ImageChoice }> | undefined;

/** Both images, ensured once per test file. */
export function runtimeImages(): Promise<{ base: ImageChoice; envoy: ImageChoice }> {
  memo ??= (async () => {
    const config = systemConfig();
    const backend = dockerBackend(config, (line) => console.log(`[images] ${line}`));
    const { choices } = await ensureRuntimeImages(config, ["base", "envoy"], backend, (c) =>
      console.log(`[images] ${describeChoice(c, config.origins)}`),
    );
    return { base: choices[0]!, envoy: choices[1]! };
  })();
  return memo;
}
