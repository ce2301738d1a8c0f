#!/usr/bin/env bash
# `make bench`: every benchmark script, each printing its numbers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export IAC_BASE_IMAGE="${IAC_BASE_IMAGE:-iac-local/python:3.11-slim}"
for b in bench/build.ts bench/deploy.ts bench/api.ts; do
  [ -f "$b" ] || continue
  echo "== $b"
  npx --no-install tsx "$b"
done
