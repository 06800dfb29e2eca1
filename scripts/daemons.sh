#!/usr/bin/env bash
# Kubo and ipfs-cluster, built from the Go module proxy at the versions the deployer deploys:
# the image tags KUBO_IMAGE and CLUSTER_IMAGE of manifests/kubernetes/values.env are the one
# place for them (the tested Kubo is the shipped Kubo).
#
#   scripts/daemons.sh versions   prints KUBO_VERSION=vX.Y.Z and CLUSTER_VERSION=vX.Y.Z
#   scripts/daemons.sh build      builds both (once per version, scripts/gobuild.sh) and prints
#                                 IPFS_BIN=..., IPFS_CLUSTER_SERVICE_BIN=..., IPFS_CLUSTER_CTL_BIN=...
#                                 (lines KEY=PATH, for `eval` or for tests/localcluster)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
values="$here/../manifests/kubernetes/values.env"

# The tag of an image line: docker.io/ipfs/kubo:v0.42.0 -> v0.42.0. Only a release tag is
# accepted: it must name a Go module version.
tag() {
  local key=$1 line t
  line=$(grep -m1 "^$key=" "$values") || { echo "daemons.sh: no $key in $values" >&2; exit 1; }
  t=${line##*:}
  [[ $t =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "daemons.sh: $key tag '$t' in $values is not a release version vX.Y.Z" >&2; exit 1; }
  echo "$t"
}

versions() {
  echo "KUBO_VERSION=$(tag KUBO_IMAGE)"
  echo "CLUSTER_VERSION=$(tag CLUSTER_IMAGE)"
}

build() {
  local kubo cluster kdir cdir
  kubo=$(tag KUBO_IMAGE)
  cluster=$(tag CLUSTER_IMAGE)
  kdir=$("$here/gobuild.sh" github.com/ipfs/kubo "$kubo" github.com/ipfs/kubo/cmd/ipfs) \
    || { echo "daemons.sh: building Kubo $kubo failed (see above)" >&2; exit 1; }
  cdir=$("$here/gobuild.sh" github.com/ipfs-cluster/ipfs-cluster "$cluster" \
    github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-service \
    github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl) \
    || { echo "daemons.sh: building ipfs-cluster $cluster failed (see above)" >&2; exit 1; }
  echo "IPFS_BIN=$kdir/ipfs"
  echo "IPFS_CLUSTER_SERVICE_BIN=$cdir/ipfs-cluster-service"
  echo "IPFS_CLUSTER_CTL_BIN=$cdir/ipfs-cluster-ctl"
}

case "${1:-}" in
  versions) versions ;;
  build) build ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
