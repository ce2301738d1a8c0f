#!/usr/bin/env bash
# `make bench`: bench/perf.ts prints every figure of issue 14 beside its anchor (table on
# stdout, JSON in bench/results/). BENCH_ALL=1 also runs the detailed scripts (build, deploy,
# Envoy, API). Debian's docker-compose (an anchor: what a user would pick instead) is
# installed for the bench only (`scripts/bootstrap.sh bench-tools`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh bench-tools || echo "[bench] docker-compose unavailable: its anchor is skipped" >&2
echo "== bench/perf.ts"
npx --no-install tsx bench/perf.ts
if [ "${BENCH_ALL:-0}" = 1 ]; then
  for b in bench/build.ts bench/deploy.ts bench/envoy.ts bench/api.ts; do
    echo "== $b"
    npx --no-install tsx "$b"
  done
fi
