#!/usr/bin/env bash
# The whole test suite: starts what it needs (Docker, busybox-static), then runs every test of
# the workspace against the real engine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/ensure-docker.sh"
# Fetching from a local remote (file://) runs git's `git-upload-pack`, as git itself does.
if ! command -v git-upload-pack >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq git >/dev/null
fi
# The compose tests compare with what docker-compose resolves, and adopt what it starts.
if ! command -v docker-compose >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null
fi
# The status page test loads the page in headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# The e-mail channel's tests run a real SMTP server (Debian's python3-aiosmtpd) with a test CA made
# by the openssl command.
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-aiosmtpd openssl >/dev/null
fi
# The Kubernetes tests run against a real control plane (etcd, kube-apiserver,
# kube-controller-manager on 127.0.0.1), built once from Debian's sources and cached; started here
# (or reused when one already answers) and stopped at the end if this run started it.
k8s_dir="${TMPDIR:-/tmp}/refinery-k8s-test"
k8s_was_up=false
if [ -f "$k8s_dir/kubeconfig" ] && [ -f "$k8s_dir/apiserver.pid" ] && kill -0 "$(cat "$k8s_dir/apiserver.pid")" 2>/dev/null; then
  k8s_was_up=true
fi
REFINERY_K8S_KUBECONFIG=$(flock -o "${TMPDIR:-/tmp}/refinery-k8s-test.lock" bash "$top/scripts/k8s-control-plane.sh" start "$k8s_dir" | tail -1)
export REFINERY_K8S_KUBECONFIG
if [ "$k8s_was_up" = false ]; then
  trap 'bash "$top/scripts/k8s-control-plane.sh" stop "$k8s_dir"' EXIT
fi
cd "$top"
cargo test --workspace --all-targets "$@"
