#!/usr/bin/env bash
# `make demo`: deploys the bundled example repos (examples/demo.yaml, local file: slugs, no
# network needed) as project "demo" on network "iac-demo", then shows health and logs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export IAC_BASE_IMAGE="${IAC_BASE_IMAGE:-iac-local/python:3.11-slim}"
envoy_image="${IAC_ENVOY_IMAGE:-envoyproxy/envoy:v1.40.0}"
if [ -z "${IAC_SIDECAR:-}" ]; then
  if docker image inspect "$envoy_image" >/dev/null 2>&1; then
    export IAC_SIDECAR=envoy
  else
    echo "demo: Envoy image $envoy_image is not present locally (nothing can be pulled here);" >&2
    echo "demo: deploying with IAC_SIDECAR=none (the runner serves mTLS itself on 15000)." >&2
    export IAC_SIDECAR=none
  fi
fi
IAC="node bin/iac.js"
$IAC deploy --file examples/demo.yaml --project demo --network iac-demo
echo
$IAC health --project demo
echo
for svc in $($IAC health --project demo --output json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).services.map(x=>x.name).join(" ")))'); do
  echo "--- iac logs $svc --project demo"
  $IAC logs "$svc" --project demo --tail 5
done
echo
echo "demo: remove it with 'make demo-destroy' (or: npx iac destroy --project demo)"
