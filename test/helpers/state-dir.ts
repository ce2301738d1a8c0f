// Vitest setup: every test process gets its own IAC_STATE_DIR (a temp dir) unless the test
// sets one, so no test ever writes to the real ~/.local/state/iac-wrapper.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

process.env.IAC_STATE_DIR ??= mkdtempSync(path.join(tmpdir(), "iac-state-test-"));
