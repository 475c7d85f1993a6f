#!/usr/bin/env bash
# A real Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager on
# 127.0.0.1, with TLS and client certificates, and no kubelet or scheduler (Pods stay Pending;
# Deployments, ReplicaSets, rollout history and server-side apply work).
#
#   scripts/k8s-control-plane.sh build          build the binaries once (cached), print the bin dir
#   scripts/k8s-control-plane.sh start DIR      start a control plane in DIR, print its kubeconfig path
#   scripts/k8s-control-plane.sh stop DIR       stop the control plane started in DIR
#
# The binaries come from Debian's `kubernetes` 1.20.2 source package, built with Debian's Go in
# GOPATH mode (module mode with -mod=vendor fails on Go 1.19), with the missing openapi file
# generated first and the vendored reflect2 1.0.1 (segfaults on Go >= 1.18) replaced by Debian's
# 1.0.2. They are cached in $REFINERY_K8S_CACHE (default /var/cache/refinery-k8s); a second
# `build` reuses them. Every step is idempotent.
set -euo pipefail

cache=${REFINERY_K8S_CACHE:-/var/cache/refinery-k8s}
bin="$cache/bin"
binaries=(kube-apiserver kube-controller-manager kubectl)

log() { echo "k8s-control-plane: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

have_binaries() {
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  command -v etcd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1
}

install_packages() {
  local srcs=/etc/apt/sources.list.d/refinery-k8s-src.sources
  if [ ! -f "$srcs" ]; then
    as_root tee "$srcs" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  local missing=()
  for p in etcd-server golang-go golang-github-modern-go-reflect2-dev openssl dpkg-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ] || ! ls "$cache"/src/kubernetes_*.dsc >/dev/null 2>&1; then
    log "installing ${missing[*]:-nothing new} (apt)"
    as_root apt-get update -qq
    if [ "${#missing[@]}" -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
}

build() {
  if have_binaries; then
    echo "$bin"
    return
  fi
  install_packages
  mkdir -p "$cache/src" "$bin"
  cd "$cache/src"
  if ! ls kubernetes_*.dsc >/dev/null 2>&1; then
    log "fetching Debian's kubernetes source package"
    apt-get source --download-only kubernetes >/dev/null
  fi
  if [ ! -d tree ]; then
    dpkg-source -x --no-check kubernetes_*.dsc tree.part >/dev/null
    mv tree.part tree
  fi
  local tree="$cache/src/tree"
  # reflect2 1.0.1 (vendored) segfaults under Go >= 1.18; Debian ships 1.0.2.
  if [ ! -f "$tree/vendor/github.com/modern-go/reflect2/.debian-1.0.2" ]; then
    rm -rf "$tree/vendor/github.com/modern-go/reflect2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
    touch "$tree/vendor/github.com/modern-go/reflect2/.debian-1.0.2"
  fi
  export GOPATH="$cache/gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
  export GOCACHE="$cache/gocache"
  mkdir -p "$GOPATH/src/k8s.io"
  [ -L "$GOPATH/src/k8s.io/kubernetes" ] || ln -s "$tree" "$GOPATH/src/k8s.io/kubernetes"
  cd "$GOPATH/src/k8s.io/kubernetes"
  local openapi=pkg/generated/openapi/zz_generated.openapi.go
  if [ ! -f "$openapi" ]; then
    log "generating $openapi"
    go build -o "$cache/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
    local dirs
    dirs=$(grep -rl --include='*.go' '^// *+k8s:openapi-gen=' pkg vendor/k8s.io/*/ |
      grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
      xargs -n1 dirname | sed 's#/$##' | LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd, -)
    "$cache/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
      -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
      -r "$cache/openapi-violations.report" 2>"$cache/openapi-gen.log"
  fi
  local v=k8s.io/kubernetes/vendor/k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=v1.20.2 -X $v.gitMajor=1 -X $v.gitMinor=20"
  for b in "${binaries[@]}"; do
    if [ ! -x "$bin/$b" ]; then
      log "building $b (a few minutes on 2 cores)"
      go build -tags providerless -ldflags "$ldflags" -o "$bin/$b.part" "k8s.io/kubernetes/cmd/$b"
      mv "$bin/$b.part" "$bin/$b"
    fi
  done
  echo "$bin"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1
}

cert() { # name cn org [server]
  local dir=$1 name=$2 cn=$3 org=$4 server=${5:-}
  openssl genrsa -out "$dir/$name.key" 2048 2>/dev/null
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
  local ext="$dir/$name.ext"
  if [ -n "$server" ]; then
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\nextendedKeyUsage=serverAuth,clientAuth\n' >"$ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' >"$ext"
  fi
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
}

kubeconfig() { # file user server
  local file=$1 user=$2 server=$3 dir=$4
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: refinery-test
  cluster:
    server: $server
    certificate-authority: $dir/ca.crt
users:
- name: $user
  user:
    client-certificate: $dir/$user.crt
    client-key: $dir/$user.key
contexts:
- name: refinery-test
  context:
    cluster: refinery-test
    user: $user
current-context: refinery-test
EOF
}

start() {
  local dir=${1:?usage: start DIR}
  build >/dev/null
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/kubeconfig" ] && "$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    echo "$dir/kubeconfig"
    return
  fi
  stop "$dir"
  rm -rf "$dir/etcd" "$dir/pki"
  local pki="$dir/pki"
  mkdir -p "$pki"
  openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=refinery-test-ca" -days 30 -out "$pki/ca.crt" 2>/dev/null
  cert "$pki" apiserver kube-apiserver "" server
  cert "$pki" admin admin system:masters
  cert "$pki" controller-manager system:kube-controller-manager ""
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

  local etcd_client etcd_peer api
  etcd_client=$(free_port)
  etcd_peer=$(free_port)
  api=$(free_port)
  local server="https://127.0.0.1:$api"
  nohup etcd --data-dir "$dir/etcd" --name refinery-test \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "refinery-test=http://127.0.0.1:$etcd_peer" \
    --quota-backend-bytes 268435456 --log-level error >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"

  nohup "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
    --endpoint-reconciler-type none --allow-privileged --v 0 >"$dir/apiserver.log" 2>&1 &
  echo $! >"$dir/apiserver.pid"

  kubeconfig "$dir/kubeconfig" admin "$server" "$pki"
  kubeconfig "$dir/controller-manager.kubeconfig" controller-manager "$server" "$pki"

  local i
  for i in $(seq 1 120); do
    if "$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
      log "kube-apiserver exited; its log:"
      tail -20 "$dir/apiserver.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  "$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null

  nohup "$bin/kube-controller-manager" --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --use-service-account-credentials --root-ca-file "$pki/ca.crt" \
    --service-account-private-key-file "$pki/sa.key" --leader-elect=false --port=0 \
    --bind-address 127.0.0.1 --secure-port 0 --controllers '*,-nodeipam,-nodelifecycle,-ttl,-attachdetach' \
    --v 0 >"$dir/controller-manager.log" 2>&1 &
  echo $! >"$dir/controller-manager.pid"
  # Controllers are ready when the default service account exists in `default`.
  for i in $(seq 1 120); do
    if "$bin/kubectl" --kubeconfig "$dir/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$dir/controller-manager.pid")" 2>/dev/null; then
      log "kube-controller-manager exited; its log:"
      tail -20 "$dir/controller-manager.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "$dir/kubeconfig"
}

stop() {
  local dir=${1:?usage: stop DIR}
  local p
  for p in controller-manager apiserver etcd; do
    if [ -f "$dir/$p.pid" ]; then
      local pid i
      pid=$(cat "$dir/$p.pid")
      kill "$pid" 2>/dev/null || true
      # Wait for it to exit (the apiserver drains for a few seconds), then insist.
      for i in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
      done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
}

case "${1:-}" in
build) build ;;
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
*)
  echo "usage: $0 build | start DIR | stop DIR" >&2
  exit 2
  ;;
esac
