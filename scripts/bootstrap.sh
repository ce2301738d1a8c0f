#!/usr/bin/env bash
# Idempotent provisioning of everything iac-wrapper needs on a Debian bookworm machine:
# Node and Python deps, a Docker engine, the runtime images (base + Envoy: present, pulled, or
# built locally when no registry answers), Terraform and the kreuzwerker/docker provider
# (built from the Go module proxy, no registry needed).
# Used by `make bootstrap`, `make test`, `make demo` and `.ci/run`. Fast when all is present.
#
# Usage: scripts/bootstrap.sh [all|engine|images|base-image|envoy-image|terraform|provider|node|python|hooks|cli]...
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${IAC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iac-wrapper}"
# The provider has no usable release tags on the Go proxy (its go.mod names the old
# terraform-providers path and v3+/v4 tags lack a /vN suffix), so it is pinned to a commit
# by pseudo-version. This commit is v4.6.0 plus fixes up to 2026-09-16.
PROVIDER_MODULE="github.com/kreuzwerker/terraform-provider-docker"
PROVIDER_PSEUDO="v0.0.0-20260916201441-96d331c98ff4"
PROVIDER_VERSION="${IAC_PROVIDER_VERSION:-4.6.0}"
MIRROR_DIR="$CACHE/terraform/mirror"
TF_RC="$CACHE/terraform/terraformrc"

mkdir -p "$CACHE"
log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run as root, or install it yourself)"; }
apt_install() {
  need_root "installing $*"
  if [ ! -f "$CACHE/.apt-updated" ] || [ -n "$(find "$CACHE/.apt-updated" -mmin +720 2>/dev/null)" ]; then
    apt-get update -qq && mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine() {
  if docker info >/dev/null 2>&1; then
    log "docker engine: reusing running engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
    return
  fi
  command -v dockerd >/dev/null 2>&1 || { log "installing Debian docker.io"; apt_install docker.io; }
  need_root "starting dockerd"
  mkdir -p "$CACHE"
  log "starting dockerd (log: $CACHE/dockerd.log)"
  nohup dockerd >"$CACHE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 "$CACHE/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
  log "docker engine: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
}

# Tools only the test suite needs: sshd for the ssh:// DOCKER_HOST test (a real sshd on loopback).
test_tools() {
  [ -x /usr/sbin/sshd ] && return
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian openssh-server (the ssh:// DOCKER_HOST test runs a real sshd on loopback)"
    apt_install openssh-server
  else
    log "WARNING: /usr/sbin/sshd is missing: test/integration/docker-ssh.test.ts will fail (install openssh-server)"
  fi
}

# The runtime images (app base, Envoy sidecar): present -> docker pull -> only when the pull
# fails, the local substitute (images/<role>/build.sh). The order lives in src/image/runtime-images.ts, the
# same code the CLI's preflight runs; the result is recorded in $CACHE/bootstrap.json, which
# the CLI reads as defaults (below flags, the environment and .env).
images() {
  cd "$ROOT"
  node bin/iac.js images --record "$@" >&2 || die "could not provide the runtime images (see above)"
}

terraform_bin() {
  if command -v terraform >/dev/null 2>&1; then
    log "terraform: $(terraform version | head -1) at $(command -v terraform)"
    return
  fi
  # No HashiCorp release downloads here: build from the Go module proxy, at versions whose
  # go.mod has no replace directives (those break `go install`): terraform v1.5.7 (the last
  # MPL release), else OpenTofu v1.6.2.
  mkdir -p "$CACHE/bin"
  if [ ! -x "$CACHE/bin/terraform" ]; then
    command -v go >/dev/null 2>&1 || die "terraform is missing and Go is not installed to build it"
    log "terraform missing: building terraform ${IAC_TERRAFORM_VERSION:-v1.5.7} from the Go module proxy (several minutes)"
    if GOBIN="$CACHE/bin" go install "github.com/hashicorp/terraform@${IAC_TERRAFORM_VERSION:-v1.5.7}"; then
      :
    else
      log "terraform build failed; trying OpenTofu v1.6.2"
      GOBIN="$CACHE/bin" go install github.com/opentofu/opentofu/cmd/tofu@v1.6.2 ||
        die "could not build terraform or OpenTofu; install terraform >= 1.5 and re-run"
      ln -sf "$CACHE/bin/tofu" "$CACHE/bin/terraform"
    fi
  fi
  log "terraform: $("$CACHE/bin/terraform" version | head -1) at $CACHE/bin/terraform (set IAC_TERRAFORM_BIN=$CACHE/bin/terraform or add it to PATH)"
}

provider() {
  local dest="$MIRROR_DIR/registry.terraform.io/kreuzwerker/docker/$PROVIDER_VERSION/linux_amd64"
  local bin="$dest/terraform-provider-docker_v$PROVIDER_VERSION"
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null 2>&1 || die "Go is needed to build the kreuzwerker/docker provider"
    local t0 work src
    t0=$(date +%s)
    work="$(mktemp -d "${TMPDIR:-/tmp}/iac-provider.XXXXXX")"
    log "building kreuzwerker/docker provider $PROVIDER_VERSION ($PROVIDER_PSEUDO) from the Go module proxy (~3 min cold)"
    # The module zip is fetched through the Go toolchain's own proxy protocol; we build
    # inside it (its go.mod declares the old terraform-providers path, so it cannot be
    # `go install`ed by the kreuzwerker path).
    (cd "$work" && GOFLAGS=-mod=mod go mod download -json "$PROVIDER_MODULE@$PROVIDER_PSEUDO" >dl.json 2>&1) || true
    src="$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' "$work/dl.json" | head -1)"
    if [ -z "$src" ] || [ ! -d "$src" ]; then
      local proxy="${GOPROXY%%,*}"; proxy="${proxy:-https://proxy.golang.org}"
      curl -fsSL -o "$work/p.zip" "$proxy/$PROVIDER_MODULE/@v/$PROVIDER_PSEUDO.zip" ||
        die "could not download $PROVIDER_MODULE@$PROVIDER_PSEUDO from $proxy"
      (cd "$work" && unzip -q p.zip)
      src="$work/$PROVIDER_MODULE@$PROVIDER_PSEUDO"
    fi
    mkdir -p "$dest"
    (cd "$src" && go build -trimpath -o "$bin.tmp" .) || die "provider build failed (see above)"
    mv "$bin.tmp" "$bin"
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
    log "provider built in $(( $(date +%s) - t0 )) s"
  fi
  mkdir -p "$CACHE/terraform/plugin-cache"
  cat >"$TF_RC.tmp" <<RC
# Written by scripts/bootstrap.sh. Terraform finds kreuzwerker/docker in a local mirror.
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR_DIR"
    include = ["registry.terraform.io/kreuzwerker/docker"]
  }
  direct {
    exclude = ["registry.terraform.io/kreuzwerker/docker"]
  }
}
plugin_cache_dir = "$CACHE/terraform/plugin-cache"
RC
  mv "$TF_RC.tmp" "$TF_RC"
  log "provider kreuzwerker/docker $PROVIDER_VERSION in $MIRROR_DIR (CLI config: $TF_RC)"
}

node_deps() {
  cd "$ROOT"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing Node deps (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  else
    log "node deps: up to date"
  fi
  # The compiled CLI (dist/) that bin/iac.js runs; rebuilt only when src/ changed.
  node scripts/build.mjs --if-stale --quiet || die "could not build dist/ (see above)"
}

python_deps() {
  cd "$ROOT"
  local stamp=.venv/.requirements.sha
  local want
  want="$(cat runner/requirements.txt runner/requirements-dev.txt | sha256sum | cut -c1-16)"
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python deps into .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r runner/requirements.txt -r runner/requirements-dev.txt
    echo "$want" >"$stamp"
  else
    log "python deps: up to date"
  fi
  # schemathesis for `make test-contract`, in a venv of its own (its pytest and hypothesis
  # pins must not move the runner's tooling).
  stamp=.venv-contract/.requirements.sha
  want="$(sha256sum <test/contract/requirements.txt | cut -c1-16)"
  if [ ! -x .venv-contract/bin/schemathesis ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing schemathesis into .venv-contract"
    python3 -m venv .venv-contract
    .venv-contract/bin/pip install -q --disable-pip-version-check -r test/contract/requirements.txt
    echo "$want" >"$stamp"
  else
    log "contract-test deps: up to date"
  fi
}

hooks() {
  cd "$ROOT"
  if [ -d .git ] && [ -x .venv/bin/pre-commit ] && [ ! -f .git/hooks/pre-commit ]; then
    .venv/bin/pre-commit install >/dev/null && log "pre-commit hook installed"
  fi
}

# A bare `iac` in new shells: a symlink to bin/iac.js in a bin dir already on PATH
# ($IAC_BIN_DIR, else ~/.local/bin, else /usr/local/bin, the first writable one on PATH).
# Never replaces a file it did not create; says what it did and how to undo it.
cli_link() {
  local target="$ROOT/bin/iac.js" dir="" d
  if [ -n "${IAC_BIN_DIR:-}" ]; then
    dir="$IAC_BIN_DIR"
  else
    for d in "$HOME/.local/bin" /usr/local/bin; do
      case ":$PATH:" in *":$d:"*) [ -d "$d" ] && [ -w "$d" ] && { dir="$d"; break; } ;; esac
    done
  fi
  if [ -z "$dir" ]; then
    log "iac: no writable bin dir on PATH (~/.local/bin, /usr/local/bin); run \`npm install -g $ROOT\`,"
    log "     or set IAC_BIN_DIR to one and re-run: scripts/bootstrap.sh cli"
    return 0
  fi
  mkdir -p "$dir"
  local link="$dir/iac"
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
    log "iac: $link -> $target (up to date)"
    return 0
  fi
  if [ -e "$link" ] && { [ ! -L "$link" ] || [ "$(basename "$(readlink "$link")")" != iac.js ]; }; then
    log "iac: $link exists and is not a link made by this script: left alone (use npx iac, or remove it)"
    return 0
  fi
  ln -sfn "$target" "$link"
  log "iac: linked $link -> $target; \`iac\` works in new shells (undo: rm $link)"
  case ":$PATH:" in *":$dir:"*) ;; *) log "iac: add $dir to PATH: export PATH=\"$dir:\$PATH\"" ;; esac
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(all)
for s in "${steps[@]}"; do
  case "$s" in
    all) node_deps; python_deps; hooks; engine; images base envoy; terraform_bin; provider; test_tools ;;
    cli) cli_link ;;
    engine) engine ;;
    images) node_deps; python_deps; engine; images base envoy ;;
    base-image) node_deps; engine; images base ;;
    envoy-image) node_deps; python_deps; engine; images envoy ;;
    terraform) terraform_bin ;;
    provider) provider ;;
    node) node_deps ;;
    python) python_deps ;;
    hooks) hooks ;;
    *) die "unknown step '$s' (all|engine|images|base-image|envoy-image|terraform|provider|node|python|hooks|cli)" ;;
  esac
done
