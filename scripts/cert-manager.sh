#!/usr/bin/env bash
# cert-manager (real controllers, upstream) and Pebble (Let's Encrypt's test ACME server) for
# the deployer's integration tests (deployer/tests/cert_manager.rs).
#
#   scripts/cert-manager.sh build     build cert-manager's controller and acmesolver at
#                                     CERT_MANAGER_VERSION (manifests/kubernetes/values.env,
#                                     the version the deployer installs) and pebble and
#                                     pebble-challtestsrv at PEBBLE_VERSION (scripts/env.sh),
#                                     with scripts/gobuild.sh, once; prints two lines
#                                     CERT_MANAGER_BIN=DIR and PEBBLE_BIN=DIR
#   scripts/cert-manager.sh pebble-ca print the path of the CA certificate of Pebble's own
#                                     HTTPS listener (the module's test certificate)
#   scripts/cert-manager.sh pebble-cert
#                                     print "CERT KEY": that listener's certificate and key
#                                     (for localhost and 127.0.0.1)
#
# cert-manager publishes its commands' modules (cmd/controller: .../controller-binary) on no
# module proxy, only the module holding every controller: the mains are the project's own,
# scripts/cert-manager/*/main.go (each says what it leaves out), built in a build module whose
# path lies under cert-manager's so that they may import its internal configuration packages.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

cert_manager_version() { sed -n 's/^CERT_MANAGER_VERSION=//p' "$here/../manifests/kubernetes/values.env"; }

build() {
  local v cm pebble
  v=$(cert_manager_version)
  [[ -n "$v" ]] || { echo "cert-manager.sh: no CERT_MANAGER_VERSION in values.env" >&2; exit 1; }
  local path=github.com/cert-manager/cert-manager/ipfs-edge-build
  # cert-manager v1.21.1 requires vcert v5.13.7, which the Go module proxy refuses ("not
  # available"); the next patch release, v5.13.8, is served, and the build takes that.
  cm=$(GOBUILD_REQUIRE="github.com/Venafi/vcert/v5@v5.13.8" GOBUILD_SOURCE="$here/cert-manager" GOBUILD_MODULE_PATH="$path" \
    "$here/gobuild.sh" github.com/cert-manager/cert-manager "$v" "$path/controller" "$path/acmesolver")
  pebble=$("$here/gobuild.sh" github.com/letsencrypt/pebble/v2 "v$PEBBLE_VERSION" \
    github.com/letsencrypt/pebble/v2/cmd/pebble github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv)
  echo "CERT_MANAGER_BIN=$cm"
  echo "PEBBLE_BIN=$pebble"
}

pebble_dir() {
  local d
  d=$(go mod download -json "github.com/letsencrypt/pebble/v2@v$PEBBLE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [[ -d "$d/test/certs" ]] || { echo "cert-manager.sh: no test/certs in pebble v$PEBBLE_VERSION" >&2; exit 1; }
  echo "$d"
}

case "${1:-}" in
  build) build ;;
  pebble-ca) echo "$(pebble_dir)/test/certs/pebble.minica.pem" ;;
  pebble-cert) d=$(pebble_dir); echo "$d/test/certs/localhost/cert.pem $d/test/certs/localhost/key.pem" ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
