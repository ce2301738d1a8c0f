#!/usr/bin/env bash
# terraform fmt -check + validate of infra/ (single host) and infra/swarm/ with the provider
# from the local mirror.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../infra"
CACHE="${IAC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iac-wrapper}"
export TF_CLI_CONFIG_FILE="${IAC_TF_CLI_CONFIG:-$CACHE/terraform/terraformrc}"
terraform fmt -check -recursive .
for module in . swarm; do
  export TF_DATA_DIR="$CACHE/terraform/validate-data${module#.}"
  rm -f "$module/.terraform.lock.hcl" # gitignored; the provider is built locally, pinned by exact version
  terraform -chdir="$module" init -backend=false -input=false -no-color >/dev/null
  terraform -chdir="$module" validate -no-color
done
