#!/usr/bin/env bash
# Builds real upstream Go programs from the Go module proxy, cached outside the checkout.
#
#   scripts/gobuild.sh MODULE VERSION PKG [PKG...]
#       prints the directory holding the binaries (one per PKG, named as `go build` names
#       them: the last element of the package path). Built once per MODULE@VERSION (and
#       extra requirements); later calls only print the directory.
#
#   GOBUILD_REQUIRE="mod@ver ..."   extra requirements of the build module (pins)
#   GOBUILD_REPLACE="old=new@ver ..." replace directives of the build module: for modules
#                                   whose own go.mod points at local paths (k8s.io/kubernetes'
#                                   staging modules at v0.0.0)
#   GOBUILD_LDFLAGS="-X pkg.var=v ..." extra linker flags: the version stamps a release build
#                                   sets (without them Kubernetes reports v0.0.0-master)
#   GOBUILD_SOURCE=DIR GOBUILD_MODULE_PATH=PATH
#                                   main packages of the project's own: each subdirectory of
#                                   DIR is copied into the build module, whose module path is
#                                   PATH, and is built as PATH/<subdirectory> (a PKG argument);
#                                   for a module that publishes its libraries but not its
#                                   commands (cert-manager). The sources' hash is in the key.
#
# Why a build module of our own instead of `go install M/cmd/X@V`: `go install` refuses a
# module whose go.mod has replace or exclude directives (Kubo has excludes); requiring the
# module from a module of our own builds the very same packages, and works for all.
# The build module, the binaries and a stamp live in $IPFS_EDGE_CACHE/go/<key>/; Go's own
# caches (GOMODCACHE, GOCACHE) are the user's, outside the checkout too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

[[ $# -ge 3 ]] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
module=$1 version=$2
shift 2
pkgs=("$@")

command -v go >/dev/null || { echo "gobuild.sh: no go on PATH (Go 1.26 is needed)" >&2; exit 1; }
key="$(echo "$module" | tr '/' '_')@$version"
extra="${GOBUILD_REQUIRE:-}|${GOBUILD_REPLACE:-}|${pkgs[*]}"
if [[ -n "${GOBUILD_LDFLAGS:-}" ]]; then extra="$extra|${GOBUILD_LDFLAGS}"; fi
if [[ -n "${GOBUILD_SOURCE:-}" ]]; then
  [[ -n "${GOBUILD_MODULE_PATH:-}" && -d "$GOBUILD_SOURCE" ]] || { echo "gobuild.sh: GOBUILD_SOURCE needs a directory and GOBUILD_MODULE_PATH" >&2; exit 2; }
  GOBUILD_SOURCE="$(cd "$GOBUILD_SOURCE" && pwd)"
  extra="$extra|$GOBUILD_MODULE_PATH|$(cd "$GOBUILD_SOURCE" && find . -type f -name '*.go' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
fi
if [[ -n "${GOBUILD_REQUIRE:-}${GOBUILD_REPLACE:-}${GOBUILD_LDFLAGS:-}${GOBUILD_SOURCE:-}" ]]; then
  key="$key-$(printf '%s' "$extra" | sha256sum | cut -c1-12)"
fi
dir="$IPFS_EDGE_CACHE/go/$key"
stamp="$dir/stamp"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$extra" ]]; then
  ok=1
  for p in "${pkgs[@]}"; do
    # As `go build` names it: a trailing major version (.../server/v3) names by the element before.
    name="${p##*/}"
    if [[ "$name" =~ ^v[0-9]+$ ]]; then name="${p%/*}"; name="${name##*/}"; fi
    [[ -x "$dir/bin/$name" ]] || ok=0
  done
  if [[ $ok == 1 ]]; then echo "$dir/bin"; exit 0; fi
fi

log() { echo "gobuild.sh: $*" >&2; }
mkdir -p "$dir/mod"
cd "$dir/mod"
rm -f go.mod go.sum
go mod init "${GOBUILD_MODULE_PATH:-ipfs-edge.local/build}" >/dev/null 2>&1
if [[ -n "${GOBUILD_SOURCE:-}" ]]; then
  find . -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  for d in "$GOBUILD_SOURCE"/*/; do cp -r "$d" "./$(basename "$d")"; done
fi
go mod edit -require="$module@$version"
for r in ${GOBUILD_REQUIRE:-}; do go mod edit -require="$r"; done
for r in ${GOBUILD_REPLACE:-}; do go mod edit -replace="$r"; done
# A blank import of each package makes `go mod tidy` keep exactly what they need.
{
  echo "//go:build tools"
  echo "package build"
  echo "import ("
  for p in "${pkgs[@]}"; do
    # The build module's own packages are tidied as its own; a main package cannot be imported.
    [[ -n "${GOBUILD_MODULE_PATH:-}" && "$p" == "$GOBUILD_MODULE_PATH"/* ]] && continue
    echo "  _ \"$p\""
  done
  echo ")"
} >tools.go
start=$SECONDS
log "$module@$version: resolving modules"
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>"$dir/tidy.log" || { cat "$dir/tidy.log" >&2; exit 1; }
# The module's own version must win over whatever tidy would pick for it.
go mod edit -require="$module@$version"
log "$module@$version: building ${pkgs[*]##*/} (first build: minutes on 2 cores)"
rm -rf "$dir/bin.tmp"
mkdir -p "$dir/bin.tmp"
if ! CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w ${GOBUILD_LDFLAGS:-}" -o "$dir/bin.tmp/" "${pkgs[@]}" 2>"$dir/build.log"; then
  tail -30 "$dir/build.log" >&2
  log "build failed: $dir/build.log"
  exit 1
fi
rm -rf "$dir/bin"
mv "$dir/bin.tmp" "$dir/bin"
printf '%s' "$extra" >"$stamp"
log "$module@$version built in $((SECONDS - start)) s -> $dir/bin"
echo "$dir/bin"
