#!/usr/bin/env bash
# Envoy Gateway (real, upstream) for the tests, in its standalone mode: File resource provider,
# Host infrastructure provider (Envoy as a child process, started through func-e).
#
#   scripts/envoy-gateway.sh build       build envoy-gateway and egctl at ENVOY_GATEWAY_VERSION
#                                        (manifests/kubernetes/values.env) with scripts/gobuild.sh,
#                                        once; prints the directory of the binaries
#   scripts/envoy-gateway.sh bin         the same directory (builds if needed)
#   scripts/envoy-gateway.sh run DIR [CONFIG]
#                                        run `envoy-gateway server --config-path CONFIG` (default
#                                        DIR/standalone.yaml; log in DIR) until standard input
#                                        closes, then stop it and its Envoy. The environment
#                                        passes through (KUBECONFIG for the Kubernetes provider)
#
# `run` is what tests/gateway starts: its owner holds our stdin, so however the owner ends
# (panic, kill -9), EOF reaches us and Envoy Gateway and its Envoy are stopped. Envoy Gateway
# runs in a process group of its own; func-e gives Envoy a parent-death signal as well.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

version() { sed -n 's/^ENVOY_GATEWAY_VERSION=//p' "$here/../manifests/kubernetes/values.env"; }

bin() {
  local v
  v=$(version)
  [[ -n "$v" ]] || { echo "envoy-gateway.sh: no ENVOY_GATEWAY_VERSION in values.env" >&2; exit 1; }
  "$here/gobuild.sh" github.com/envoyproxy/gateway "$v" \
    github.com/envoyproxy/gateway/cmd/envoy-gateway github.com/envoyproxy/gateway/cmd/egctl
}

run() {
  local dir="${1:?usage: run DIR [CONFIG]}" config="${2:-$1/standalone.yaml}" b pgid
  b=$(bin)
  # setsid: a group of its own, killed whole below.
  setsid "$b/envoy-gateway" server --config-path "$config" \
    >"$dir/envoy-gateway.log" 2>&1 </dev/null &
  pgid=$!
  echo "$pgid" >"$dir/pgid"
  trap 'stop "$pgid"; exit 0' TERM INT HUP
  echo "started $pgid"
  # Until the owner's end of stdin closes (or Envoy Gateway itself exits).
  while kill -0 "$pgid" 2>/dev/null && read -r -t 1 _ || [[ $? -gt 128 ]]; do :; done
  stop "$pgid"
}

stop() {
  local pgid=$1
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}

case "${1:-}" in
  build | bin) bin ;;
  run) shift; run "$@" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
