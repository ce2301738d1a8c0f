#!/usr/bin/env bash
# Builds the local substitute for python:3.11-slim: Debian bookworm minbase with python3.11,
# venv, pip and ca-certificates (debootstrap from Debian's packages), imported as TAG.
# Called by src/image/runtime-images.ts only after `docker pull python:3.11-slim` failed. Needs root.
#
# Usage: images/base/build.sh TAG DEBIAN_MIRROR LOG_FILE RECIPE_ID
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 TAG DEBIAN_MIRROR LOG_FILE RECIPE_ID" >&2; exit 2; }
tag="$1" mirror="$2" logfile="$3" recipe="$4"
log() { printf '[base-image] %s\n' "$*" >&2; }
die() { printf '[base-image] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "debootstrap needs root: run 'sudo make bootstrap' once, or make python:3.11-slim pullable"
if ! command -v debootstrap >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it"
  log "installing debootstrap (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    die "apt-get install debootstrap failed"
fi
mkdir -p "$(dirname "$logfile")"
rootfs="$(mktemp -d "${TMPDIR:-/tmp}/iac-rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
log "debootstrap bookworm minbase + python3.11 (~1 min; log: $logfile)"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$logfile" 2>&1 ||
  { tail -20 "$logfile" >&2; die "debootstrap failed"; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.title=python org.opencontainers.image.version=3.11 org.opencontainers.image.description=\"Local substitute for python:3.11-slim: Debian bookworm minbase + python3.11 (debootstrap)\" io.iac.substitute-for=python:3.11-slim io.iac.recipe=$recipe" \
  --message "debootstrap bookworm minbase + python3.11 (iac-wrapper images/base/build.sh)" \
  - "$tag" >/dev/null || die "docker import failed"
log "imported $tag"
