#!/usr/bin/env bash
# A real control plane on 127.0.0.1 for the deployer's integration tests: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, and KWOK playing the kubelet of one
# node (pods placed there become Running and Ready as a kubelet reports them). Versions in
# scripts/env.sh; no kind/k3s/envtest binary can be had here (see README "Tests").
#
#   scripts/kube-apiserver.sh build        build once from the Go module proxy
#                                          (scripts/gobuild.sh), linked under
#                                          $IPFS_EDGE_CACHE/kube-<versions>/ (skipped when
#                                          the binaries are there)
#   scripts/kube-apiserver.sh start DIR [WATCH_PID]
#                                          start everything with state in DIR; writes
#                                          DIR/admin.kubeconfig and DIR/nobody.kubeconfig
#                                          (authenticated, no RBAC rights) and DIR/audit.log
#                                          (one line per request); stops by itself when
#                                          WATCH_PID exits
#   scripts/kube-apiserver.sh run DIR      start, print "ready <server URL>" on stdout, stop
#                                          when stdin reaches EOF (or on TERM/INT): a test
#                                          holding the pipe owns the server, and the kernel
#                                          closes it however the test ends (panic, kill -9)
#   scripts/kube-apiserver.sh restart-apiserver DIR [SECONDS_DOWN]
#                                          stop the API server of DIR and start it again
#                                          (same port, same etcd), after SECONDS_DOWN
#                                          seconds with no server (default 0)
#   scripts/kube-apiserver.sh stop DIR     stop what `start DIR` started
#   scripts/kube-apiserver.sh bin          print the directory of the binaries
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

# Versions: scripts/env.sh. Every binary is built by scripts/gobuild.sh (its own cache, keyed
# by module and version); KUBE_BIN_DIR holds links to them, so `bin` names one directory.
KUBE_BIN_DIR="$IPFS_EDGE_CACHE/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
# KWOK's stages, next to the binaries: from the same release's source.
STAGES="$KUBE_BIN_DIR/kwok-stages.yaml"
STORAGE_CLASS="$KUBE_BIN_DIR/kwok-storage-class.yaml"

log() { echo "kube-apiserver.sh: $*" >&2; }

built() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$KUBE_BIN_DIR/$b" ]] || return 1; done
  [[ -s "$STAGES" && -s "$STORAGE_CLASS" ]]
}

# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0
# and points them at ./staging with replace directives, which only its own build honours: the
# build module pins each to the release published alongside (v1.X.Y -> v0.X.Y). The list comes
# from kubernetes' own go.mod, so a new staging module needs no edit here.
kube_replaces() {
  local mod
  mod="$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [[ -f "$mod" ]] || { log "no go.mod for k8s.io/kubernetes@v$KUBE_VERSION"; exit 1; }
  awk -v v="v0.${KUBE_VERSION#1.}" '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { printf "%s=%s@%s ", $1, $1, v }' "$mod"
}

build() {
  if built; then
    log "cached in $KUBE_BIN_DIR"
    return 0
  fi
  command -v go >/dev/null || { log "no go on PATH (Go 1.26 is needed)"; exit 1; }
  # What `start` uses besides the binaries.
  if ! command -v openssl >/dev/null || ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl curl python3 ca-certificates >/dev/null
  fi
  local kube etcd kwok start=$SECONDS
  log "kube-apiserver, kube-controller-manager, kube-scheduler $KUBE_VERSION (first build: long on 2 cores)"
  # The version stamps of a release build (what /version and the components report).
  local v=component-base/version minor="${KUBE_VERSION#1.}"
  minor="${minor%%.*}"
  local stamps="-X k8s.io/$v.gitVersion=v$KUBE_VERSION -X k8s.io/$v.gitMajor=1 -X k8s.io/$v.gitMinor=$minor -X k8s.io/$v.gitTreeState=clean"
  stamps="$stamps -X k8s.io/client-go/pkg/version.gitVersion=v$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  kube="$(GOBUILD_REPLACE="$(kube_replaces)" GOBUILD_LDFLAGS="$stamps" "$here/gobuild.sh" k8s.io/kubernetes "v$KUBE_VERSION" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)"
  # etcd's server module is its main package; its go.mod points its sibling modules at ../,
  # but also requires them at the same release, which is what the build module gets.
  log "etcd $ETCD_VERSION"
  etcd="$("$here/gobuild.sh" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" go.etcd.io/etcd/server/v3)"
  log "kwok $KWOK_VERSION"
  kwok="$("$here/gobuild.sh" sigs.k8s.io/kwok "v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok)"
  rm -rf "$KUBE_BIN_DIR.tmp"
  mkdir -p "$KUBE_BIN_DIR.tmp"
  # KWOK's behaviour comes from Stage objects; the release's own "fast" sets: nodes Ready
  # with a lease heartbeat, pods Ready at once, deleted pods released, and claims of its
  # StorageClass provisioned, bound and deleted (that StorageClass is created by `start`).
  local kwok_src d f
  kwok_src="$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
  for d in node/fast node/heartbeat-with-lease pod/fast volume/fast; do
    for f in $(sed -n 's/^- \(.*\.yaml\)$/\1/p' "$kwok_src/kustomize/stage/$d/kustomization.yaml"); do
      if grep -q '^kind: Stage$' "$kwok_src/kustomize/stage/$d/$f"; then echo "---"; cat "$kwok_src/kustomize/stage/$d/$f"; fi
    done
  done >"$KUBE_BIN_DIR.tmp/kwok-stages.yaml"
  cp "$kwok_src/kustomize/stage/volume/fast/storage-class.yaml" "$KUBE_BIN_DIR.tmp/kwok-storage-class.yaml"
  ln -s "$kube/kube-apiserver" "$kube/kube-controller-manager" "$kube/kube-scheduler" "$kwok/kwok" "$KUBE_BIN_DIR.tmp/"
  # `go build` names a package path ending in a major version (.../server/v3) by the element
  # before it.
  ln -s "$etcd/server" "$KUBE_BIN_DIR.tmp/etcd"
  rm -rf "$KUBE_BIN_DIR"
  mv "$KUBE_BIN_DIR.tmp" "$KUBE_BIN_DIR"
  built || { log "a binary is missing from $KUBE_BIN_DIR"; exit 1; }
  log "built into $KUBE_BIN_DIR in $((SECONDS - start)) s"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir="${1:?usage: start DIR [WATCH_PID]}" watch="${2:-}" t0=$SECONDS
  built || { log "not built: run '$0 build' first"; exit 1; }
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
  # service accounts), the scheduler and KWOK under theirs; all three are admins here, as
  # the tests are about the deployer's rights, not theirs ("nobody" has none).
  local admin_token nobody_token cm_token sched_token kwok_token
  admin_token="$(openssl rand -hex 16)"; nobody_token="$(openssl rand -hex 16)"; cm_token="$(openssl rand -hex 16)"
  sched_token="$(openssl rand -hex 16)"; kwok_token="$(openssl rand -hex 16)"
  cat >"$dir/tokens.csv" <<TOK
$admin_token,admin,admin-uid,system:masters
$cm_token,system:kube-controller-manager,kcm-uid,system:masters
$sched_token,system:kube-scheduler,sched-uid,system:masters
$kwok_token,kwok,kwok-uid,system:masters
$nobody_token,nobody,nobody-uid
TOK
  # Metadata of every request once complete: the benchmark counts API requests from it.
  printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' \
    >"$dir/audit-policy.yaml"
  : >"$dir/pids"
  "$KUBE_BIN_DIR/etcd" --name test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
  echo "etcd $!" >>"$dir/pids"
  # The admission plugins are the release's defaults (ValidatingAdmissionPolicy, PodSecurity,
  # DefaultStorageClass, ...), as on a managed cluster. The command line is kept so that
  # `restart-apiserver` starts the very same server again.
  printf '%q ' "$KUBE_BIN_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-format json --audit-log-mode blocking >"$dir/apiserver.cmd"
  start_apiserver "$dir"
  local server="https://127.0.0.1:$api_port"
  echo "$server" >"$dir/server"
  write_kubeconfig "$dir/admin.kubeconfig" "$server" "$dir/ca.crt" admin "$admin_token"
  write_kubeconfig "$dir/nobody.kubeconfig" "$server" "$dir/ca.crt" nobody "$nobody_token"
  write_kubeconfig "$dir/kcm.kubeconfig" "$server" "$dir/ca.crt" kcm "$cm_token"
  write_kubeconfig "$dir/scheduler.kubeconfig" "$server" "$dir/ca.crt" scheduler "$sched_token"
  write_kubeconfig "$dir/kwok.kubeconfig" "$server" "$dir/ca.crt" kwok "$kwok_token"
  wait_ready "$dir"
  # The controllers a cluster runs for what the deployer creates: Deployments, StatefulSets
  # and their pods, Services' endpoints, PodDisruptionBudgets' status, namespaces' deletion,
  # the garbage collector (pods of a deleted StatefulSet), quotas, the default ServiceAccount and the
  # kube-root-ca.crt ConfigMap each new namespace gets, the PV binder (PVC status) and the
  # PVC protection controller (a claim in use is deleted only once no pod mounts it), and the
  # node lifecycle controller (it lifts the not-ready taint a new node is created with, once
  # KWOK reports it Ready). No cloud controllers: there is no cloud. No secure serving:
  # nothing scrapes it in tests.
  "$KUBE_BIN_DIR/kube-controller-manager" --kubeconfig "$dir/kcm.kubeconfig" \
    --use-service-account-credentials=false --service-account-private-key-file "$dir/sa.key" \
    --root-ca-file "$dir/ca.crt" \
    --controllers deployment-controller,replicaset-controller,statefulset-controller,namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,endpoints-controller,endpointslice-controller,endpointslice-mirroring-controller,disruption-controller,resourcequota-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,node-lifecycle-controller \
    --secure-port 0 --leader-elect=false \
    >"$dir/controller-manager.log" 2>&1 &
  echo "kube-controller-manager $!" >>"$dir/pids"
  # The scheduler places the pods on KWOK's node, once their claims are bound.
  "$KUBE_BIN_DIR/kube-scheduler" --kubeconfig "$dir/scheduler.kubeconfig" --leader-elect=false --secure-port 0 \
    >"$dir/scheduler.log" 2>&1 &
  echo "kube-scheduler $!" >>"$dir/pids"
  # KWOK plays the kubelet of one node: it keeps the node Ready and takes every pod placed
  # on it through the default "fast" stages (Running and Ready at once, containers ready;
  # deleted pods released), which is what the deployer's waits read. Pod IPs are loopback
  # addresses nothing listens on: the API server refuses to proxy to them, so a client's
  # pods/proxy call fails at once instead of waiting on an address no route leads to.
  "$KUBE_BIN_DIR/kwok" --kubeconfig "$dir/kwok.kubeconfig" --config "$STAGES" --node-lease-duration-seconds 40 \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr 127.1.0.0/16 --node-ip 127.0.1.1 --server-address 127.0.0.1:0 \
    >"$dir/kwok.log" 2>&1 &
  echo "kwok $!" >>"$dir/pids"
  # One node, large enough for every test's pods at once (the deployer sets requests).
  local node='{"apiVersion":"v1","kind":"Node","metadata":{"name":"kwok-node-0",
    "annotations":{"kwok.x-k8s.io/node":"fake","node.alpha.kubernetes.io/ttl":"0"},
    "labels":{"kubernetes.io/hostname":"kwok-node-0","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","type":"kwok"}},
    "status":{"allocatable":{"cpu":"1000","memory":"4Ti","pods":"1000","ephemeral-storage":"10Ti"},
      "capacity":{"cpu":"1000","memory":"4Ti","pods":"1000","ephemeral-storage":"10Ti"}}}'
  api "$dir" -X POST -H 'Content-Type: application/json' -d "$node" /api/v1/nodes >/dev/null \
    || { log "could not create the node"; stop "$dir"; exit 1; }
  # The default StorageClass, KWOK's: the StatefulSet's claims (no class named) get it, as
  # they get a cloud disk's class on a managed cluster.
  api "$dir" -X POST -H 'Content-Type: application/yaml' --data-binary "@$STORAGE_CLASS" \
    /apis/storage.k8s.io/v1/storageclasses >/dev/null \
    || { log "could not create the StorageClass"; stop "$dir"; exit 1; }
  local i
  for i in $(seq 1 600); do
    if api "$dir" /api/v1/nodes/kwok-node-0 2>/dev/null \
        | python3 -c 'import json,sys; n=json.load(sys.stdin); ready=any(c["type"]=="Ready" and c["status"]=="True" for c in n.get("status",{}).get("conditions",[])); sys.exit(0 if ready and not n["spec"].get("taints") else 1)' 2>/dev/null; then
      break
    fi
    alive "$dir" || { stop "$dir"; exit 1; }
    [[ $i == 600 ]] && { log "KWOK's node never became Ready and untainted: see $dir/kwok.log"; tail -20 "$dir/kwok.log" >&2; stop "$dir"; exit 1; }
    sleep 0.1
  done
  if [[ -n "$watch" ]]; then
    # Reaper: the tests cannot be trusted to call stop (a panic, a ^C).
    # Reaper in its own session (a ^C to the test's process group does not kill it first);
    # a zombie still answers kill -0, so its state is read from /proc instead.
    setsid bash -c 'while [[ -r /proc/$1/stat ]] && [[ "$(cut -d" " -f3 /proc/$1/stat 2>/dev/null)" != Z ]]; do sleep 1; done; exec "$2" stop "$3"' \
      reaper "$watch" "$here/kube-apiserver.sh" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  log "ready at $server in $((SECONDS - t0)) s (kubeconfig $dir/admin.kubeconfig)"
}

# curl as admin against the server of DIR.
api() {
  local dir="$1"; shift
  local path="${*: -1}"
  curl -fsS --cacert "$dir/ca.crt" -H "Authorization: Bearer $(sed -n '1s/,.*//p' "$dir/tokens.csv")" \
    "${@:1:$#-1}" "$(cat "$dir/server")$path"
}

start_apiserver() {
  local dir="$1"
  eval "$(cat "$dir/apiserver.cmd")" '>>"$dir/apiserver.log" 2>&1 &'
  echo "kube-apiserver $!" >>"$dir/pids"
  # `stop` may have to KILL it (see restart_apiserver): no job notice for that on stderr.
  disown "$!"
}

# Every process of DIR still running (else says which exited, with its log's tail).
alive() {
  local dir="$1" name pid
  while read -r name pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      local logf="$dir/${name#kube-}.log"
      log "$name exited: see $logf"; tail -20 "$logf" >&2
      return 1
    fi
  done <"$dir/pids"
}

wait_ready() {
  local dir="$1" i
  for i in $(seq 1 600); do
    if api "$dir" /readyz >/dev/null 2>&1; then return 0; fi
    alive "$dir" || { stop "$dir"; exit 1; }
    sleep 0.1
  done
  log "kube-apiserver not ready after 60 s: see $dir/apiserver.log"; stop "$dir"; exit 1
}

# Stops the API server of DIR and starts it again on the same port and etcd: clients see
# connections refused, then the same cluster.
restart_apiserver() {
  local dir="${1:?usage: restart-apiserver DIR [SECONDS_DOWN]}" down="${2:-0}" pid
  pid="$(awk '$1 == "kube-apiserver" { print $2 }' "$dir/pids")"
  # TERM (it stops listening at once), then KILL after 5 s: left alone it holds its open
  # watches for a minute before it exits.
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  sed -i '/^kube-apiserver /d' "$dir/pids"
  # Down for a while, as during a managed control plane's upgrade.
  sleep "$down"
  start_apiserver "$dir"
  wait_ready "$dir"
  log "kube-apiserver restarted"
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
  # Reverse order: KWOK, scheduler, controller-manager, apiserver, etcd.
  for pid in $(tac "$dir/pids" | awk '{ print $2 }'); do kill "$pid" 2>/dev/null || true; done
  for pid in $(tac "$dir/pids" | awk '{ print $2 }'); do
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
  restart-apiserver) shift; restart_apiserver "$@" ;;
  *) sed -n '2,26p' "$0" >&2; exit 2 ;;
esac
