#!/usr/bin/env bash
# The test commands. `make test` (no arguments): runner pytest alongside vitest's unit,
# component, hostile and smoke projects — the fast suite, ~1 min warm, including a real deploy
# through Envoy (test/integration/e2e.test.ts). With project names (`make test-integration`,
# `make test-faults`): those vitest projects only, one file at a time (they deploy for real).
# Integration tests use the local Docker engine, the base and Envoy images (whatever
# scripts/bootstrap.sh found, pulled or built, read from its record like every `iac` command)
# and terraform with the provider from the local mirror (bootstrap provides all of them).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
report="$(mktemp "${TMPDIR:-/tmp}/iac-vitest.XXXXXX.json")"
trap 'rm -f "$report"' EXIT

py=0
if [ "$#" -eq 0 ]; then
  # pytest runs beside vitest (its output is printed after, in one piece).
  pylog="$(mktemp "${TMPDIR:-/tmp}/iac-pytest.XXXXXX.log")"
  trap 'rm -f "$report" "$pylog"' EXIT
  (cd runner && ../.venv/bin/python -m pytest -q -p no:cacheprovider) >"$pylog" 2>&1 &
  pypid=$!
  echo "== control plane (vitest: unit + component + hostile + smoke), runner pytest alongside"
  # Mostly waiting on Docker and terraform, so more workers than cores pay off.
  npx --no-install vitest run --project unit --project component --project hostile --project smoke \
    --maxWorkers="${IAC_TEST_WORKERS:-3}" --reporter=default --reporter=json --outputFile.json="$report"
  vt=$?
  wait "$pypid"
  py=$?
  echo "== runner (pytest)"
  cat "$pylog"
else
  projects=()
  for p in "$@"; do projects+=(--project "$p"); done
  echo "== control plane (vitest: $*)"
  npx --no-install vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$report"
  vt=$?
fi

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
