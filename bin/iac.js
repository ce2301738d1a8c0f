#!/usr/bin/env node
// Entry point for `npx iac`: runs the TypeScript sources through tsx so the CLI is never stale.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
