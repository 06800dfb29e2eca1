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
CARGO_FUZZ_VERSION=0.13.2
export IPFS_EDGE_VENV="$IPFS_EDGE_CACHE/venv"
export ENVOY_BIN="${ENVOY_BIN:-$IPFS_EDGE_VENV/lib/python3.11/site-packages/envoy/_bin/envoy}"
