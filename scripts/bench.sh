#!/usr/bin/env bash
# `make bench`: every benchmark script, each printing its numbers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for b in bench/build.ts bench/deploy.ts bench/envoy.ts bench/api.ts; do
  [ -f "$b" ] || continue
  echo "== $b"
  npx --no-install tsx "$b"
done
