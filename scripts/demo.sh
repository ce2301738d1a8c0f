#!/usr/bin/env bash
# `make demo`: deploys the bundled example repos (examples/demo.yaml, local file: slugs, no
# network needed) as project "demo" on network "iac-demo", each service behind its Envoy sidecar
# (the default; the images are the ones `make bootstrap` provided), then shows health and logs.
# Settings (IAC_SIDECAR, IAC_ENVOY_IMAGE, ...) come from the environment or .env as for `iac`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
IAC="node bin/iac.js"
$IAC deploy --file examples/demo.yaml --project demo --network iac-demo
echo
docker ps --filter label=io.iac.project=demo --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
echo
$IAC health --project demo
echo
for svc in $($IAC health --project demo --output json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).services.map(x=>x.name).join(" ")))'); do
  echo "--- iac logs $svc --project demo"
  $IAC logs "$svc" --project demo --tail 5
done
echo
echo "demo: remove it with 'make demo-destroy' (or: npx iac destroy --project demo --yes)"
