#!/usr/bin/env bash
# Generates the TypeScript (ts-proto via buf from npm) and Python (grpcio-tools) code for
# proto/controlplane.proto. Output is committed; CI checks it is not stale.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-.venv/bin/python}"

rm -rf src/gen && npx buf generate
npx prettier --log-level warn --write src/gen >/dev/null

out=runner/iac_runner/gen
rm -rf "$out" && mkdir -p "$out"
"$PY" -m grpc_tools.protoc -I proto --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" proto/controlplane.proto
# grpc_tools emits a top-level `import controlplane_pb2`; make it package-relative.
sed -i 's/^import controlplane_pb2 as /from . import controlplane_pb2 as /' "$out/controlplane_pb2_grpc.py"
printf '"""Generated from proto/controlplane.proto by scripts/gen-proto.sh. Do not edit."""\n' >"$out/__init__.py"
