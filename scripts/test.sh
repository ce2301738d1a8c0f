#!/usr/bin/env bash
# The test command (`make test`, `.ci/run`): runner pytest, then vitest unit + hostile + integration.
# Integration tests use the local Docker engine, the base and Envoy images (whatever
# scripts/bootstrap.sh found, pulled or built, read from its record like every `iac` command)
# and terraform with the provider from the local mirror (bootstrap provides all of them).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
report="$(mktemp "${TMPDIR:-/tmp}/iac-vitest.XXXXXX.json")"
trap 'rm -f "$report"' EXIT

echo "== runner (pytest)"
(cd runner && ../.venv/bin/python -m pytest -q -p no:cacheprovider)
py=$?

echo "== control plane (vitest: unit + hostile + integration)"
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
vt=$?

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const skipped = r.numPendingTests + (r.numTodoTests || 0);
if (skipped) {
  console.log("SKIPPED tests (each printed its reason above):");
  for (const f of r.testResults) for (const t of f.assertionResults)
    if (t.status === "pending" || t.status === "skipped" || t.status === "todo") console.log("  - " + t.fullName);
}
// A suite that fails outside a test (a hook) counts as a failure too.
const failed = r.numFailedTests || (r.success ? 0 : Math.max(1, r.numFailedTestSuites));
console.log(`vitest: ${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
// Per project (by folder), so the hostile-input suite (issue 11) shows its own count.
const per = {};
for (const f of r.testResults) {
  const m = /\/test\/([^/]+)\//.exec(f.name);
  const k = m ? m[1] : "other";
  per[k] ??= { passed: 0, failed: 0 };
  for (const t of f.assertionResults) {
    if (t.status === "passed") per[k].passed++;
    else if (t.status === "failed") per[k].failed++;
  }
}
for (const [k, v] of Object.entries(per)) console.log(`  ${k}: ${v.passed} passed, ${v.failed} failed`);
' "$report" || true

[ "$py" -eq 0 ] && [ "$vt" -eq 0 ]
