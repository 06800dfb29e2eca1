#!/usr/bin/env bash
# A real kube-apiserver + kube-controller-manager + etcd on 127.0.0.1 for the deployer's
# integration tests (no kind/k3s/envtest binary can be had here: see README "Tests").
#
#   scripts/kube-apiserver.sh build        build once from Debian's source package, cached
#                                          under $IPFS_EDGE_CACHE/kube-<version>/ (skipped
#                                          when the binaries are there)
#   scripts/kube-apiserver.sh start DIR [WATCH_PID]
#                                          start etcd, apiserver, controller-manager with state
#                                          in DIR; writes DIR/admin.kubeconfig and
#                                          DIR/nobody.kubeconfig (authenticated, no RBAC
#                                          rights) and DIR/audit.log (one line per request);
#                                          stops by itself when WATCH_PID exits
#   scripts/kube-apiserver.sh run DIR      start, print "ready <server URL>" on stdout, stop
#                                          when stdin reaches EOF (or on TERM/INT): a test
#                                          holding the pipe owns the server, and the kernel
#                                          closes it however the test ends (panic, kill -9)
#   scripts/kube-apiserver.sh stop DIR     stop what `start DIR` started
#   scripts/kube-apiserver.sh bin          print the cache directory of the binaries
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

# Debian bookworm's `kubernetes` source package: 1.20.5+really1.20.2.
KUBE_VERSION=1.20.2
KUBE_BIN_DIR="$IPFS_EDGE_CACHE/kube-$KUBE_VERSION"

log() { echo "kube-apiserver.sh: $*" >&2; }

build() {
  if [[ -x "$KUBE_BIN_DIR/kube-apiserver" && -x "$KUBE_BIN_DIR/kube-controller-manager" ]]; then
    log "cached in $KUBE_BIN_DIR"
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  # golang-go 1.19 builds 1.20's vendored tree offline; reflect2 1.0.2 replaces the vendored
  # 1.0.1 that breaks under Go >= 1.18; etcd-server is the storage the apiserver needs.
  if ! command -v go >/dev/null || ! command -v etcd >/dev/null \
     || ! command -v rsync >/dev/null \
     || [[ ! -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends golang-go etcd-server \
      golang-github-modern-go-reflect2-dev dpkg-dev ca-certificates rsync make openssl curl python3 >/dev/null
  fi
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/kube-build.XXXXXX")"
  # A private apt configuration with a deb-src line: the machine's own sources stay untouched.
  mkdir -p "$work/apt/lists/partial" "$work/src"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  # The archive is the one this machine's apt already uses for bookworm.
  local mirror
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1)"
  [[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)"
  [[ -n "$mirror" ]] || { log "no Debian archive configured in apt's sources"; exit 1; }
  echo "deb-src [signed-by=$keyring] $mirror bookworm main" >"$work/apt/sources.list"
  local aptopts=(-o "APT::Sandbox::User=root" -o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
  mkdir -p "$work/apt/cache/archives/partial"
  log "fetching Debian's kubernetes source package"
  apt-get "${aptopts[@]}" update -qq
  (cd "$work/src" && apt-get "${aptopts[@]}" source -qq kubernetes >/dev/null)
  local src
  src="$(find "$work/src" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n1)"
  [[ -n "$src" ]] || { log "source package not unpacked"; exit 1; }
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
  # 1.20 builds in GOPATH mode with generated code (openapi, conversions) made first: its own
  # Makefile does both, as in Debian's rules; the version comes from the archive's stamps.
  mkdir -p "$src/.go/src/k8s.io"
  ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  log "building kube-apiserver and kube-controller-manager (several minutes on 2 cores)"
  (cd "$src" && env GOPATH="$src/.go" GOCACHE="$work/gocache" GOFLAGS= GOPROXY=off \
    CGO_ENABLED=0 HOME="$work" make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1) \
    || { tail -40 "$work/build.log" >&2; log "build failed: $work/build.log"; exit 1; }
  mkdir -p "$KUBE_BIN_DIR.tmp"
  cp "$src/_output/bin/kube-apiserver" "$src/_output/bin/kube-controller-manager" "$KUBE_BIN_DIR.tmp/"
  rm -rf "$KUBE_BIN_DIR"
  mv "$KUBE_BIN_DIR.tmp" "$KUBE_BIN_DIR"
  rm -rf "$work"
  log "built into $KUBE_BIN_DIR"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir="${1:?usage: start DIR [WATCH_PID]}" watch="${2:-}"
  [[ -x "$KUBE_BIN_DIR/kube-apiserver" ]] || { log "not built: run '$0 build' first"; exit 1; }
  command -v etcd >/dev/null || { log "etcd not installed: run '$0 build' first"; exit 1; }
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local etcd_port peer_port api_port
  etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
  # A CA and a serving certificate for 127.0.0.1 signed by it: rustls (the deployer's TLS)
  # refuses a self-signed certificate used directly as the server's.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ipfs-edge-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/apiserver.key" -out "$dir/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$dir/apiserver.ext"
  openssl x509 -req -in "$dir/apiserver.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/apiserver.ext" -out "$dir/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  # The controller-manager runs every controller under its own user (no per-controller
  # service accounts): its built-in role cannot create ReplicaSets or Pods, so it is admin.
  local admin_token nobody_token cm_token
  admin_token="$(openssl rand -hex 16)"; nobody_token="$(openssl rand -hex 16)"; cm_token="$(openssl rand -hex 16)"
  cat >"$dir/tokens.csv" <<TOK
$admin_token,admin,admin-uid,system:masters
$cm_token,system:kube-controller-manager,kcm-uid,system:masters
$nobody_token,nobody,nobody-uid
TOK
  # Metadata of every request once complete: the benchmark counts API requests from it.
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' \
    >"$dir/audit-policy.yaml"
  : >"$dir/pids"
  etcd --name test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
  echo $! >>"$dir/pids"
  # MixedProtocolLBService (alpha in 1.20, default from 1.24): the swarm Services are
  # LoadBalancers with 4001 TCP and UDP.
  "$KUBE_BIN_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount \
    --feature-gates MixedProtocolLBService=true \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-format json --audit-log-mode blocking \
    >"$dir/apiserver.log" 2>&1 &
  echo $! >>"$dir/pids"
  local server="https://127.0.0.1:$api_port"
  write_kubeconfig "$dir/admin.kubeconfig" "$server" "$dir/ca.crt" admin "$admin_token"
  write_kubeconfig "$dir/nobody.kubeconfig" "$server" "$dir/ca.crt" nobody "$nobody_token"
  write_kubeconfig "$dir/kcm.kubeconfig" "$server" "$dir/ca.crt" kcm "$cm_token"
  local i
  for i in $(seq 1 300); do
    if curl -fsS --cacert "$dir/ca.crt" -H "Authorization: Bearer $admin_token" \
        "$server/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(sed -n 2p "$dir/pids")" 2>/dev/null; then
      log "kube-apiserver exited: see $dir/apiserver.log"; tail -20 "$dir/apiserver.log" >&2; stop "$dir"; exit 1
    fi
    sleep 0.1
  done
  # No secure serving for the controller-manager: nothing scrapes it in tests.
  "$KUBE_BIN_DIR/kube-controller-manager" --kubeconfig "$dir/kcm.kubeconfig" \
    --use-service-account-credentials=false --service-account-private-key-file "$dir/sa.key" \
    --root-ca-file "$dir/ca.crt" --controllers '*' \
    --port 0 --secure-port 0 --leader-elect=false \
    >"$dir/controller-manager.log" 2>&1 &
  echo $! >>"$dir/pids"
  if [[ -n "$watch" ]]; then
    # Reaper: the tests cannot be trusted to call stop (a panic, a ^C).
    # Reaper in its own session (a ^C to the test's process group does not kill it first);
    # a zombie still answers kill -0, so its state is read from /proc instead.
    setsid bash -c 'while [[ -r /proc/$1/stat ]] && [[ "$(cut -d" " -f3 /proc/$1/stat 2>/dev/null)" != Z ]]; do sleep 1; done; exec "$2" stop "$3"' \
      reaper "$watch" "$here/kube-apiserver.sh" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  echo "$server" >"$dir/server"
  log "ready at $server (kubeconfig $dir/admin.kubeconfig)"
}

write_kubeconfig() {
  local file="$1" server="$2" ca="$3" user="$4" token="$5"
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $server
    certificate-authority: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: test
  context:
    cluster: test
    user: $user
current-context: test
KC
}

run() {
  local dir="${1:?usage: run DIR}"
  trap 'stop "$dir"; exit 0' TERM INT HUP
  start "$dir"
  echo "ready $(cat "$dir/server")"
  # Until the owner's end of stdin closes.
  while read -r _; do :; done
  stop "$dir"
}

stop() {
  local dir="${1:?usage: stop DIR}" pid
  [[ -f "$dir/pids" ]] || return 0
  # Reverse order: controller-manager, apiserver, etcd.
  for pid in $(tac "$dir/pids"); do kill "$pid" 2>/dev/null || true; done
  for pid in $(tac "$dir/pids"); do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$dir/pids"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  bin) echo "$KUBE_BIN_DIR" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
