#!/usr/bin/env bash
# terraform fmt -check + validate of infra/ with the provider from the local mirror.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../infra"
CACHE="${IAC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iac-wrapper}"
export TF_CLI_CONFIG_FILE="${IAC_TF_CLI_CONFIG:-$CACHE/terraform/terraformrc}"
export TF_DATA_DIR="$CACHE/terraform/validate-data"
terraform fmt -check -recursive .
rm -f .terraform.lock.hcl # gitignored; the provider is built locally, pinned by exact version
terraform init -backend=false -input=false -no-color >/dev/null
terraform validate -no-color
