#!/usr/bin/env bash
# Makes sure a Docker engine answers on the default socket: installs Debian's docker.io and starts
# dockerd when none does. Also installs busybox-static (test and demo images are built from it),
# openssl and openssh-server (multi-node tests; openssl also makes the token registry's signing
# certificate), etcd-server (the high-availability tests start a real etcd), docker-registry and
# apache2-utils (registry tests: a real registry with htpasswd, or with token auth).
set -euo pipefail
need_apt=()
command -v busybox >/dev/null 2>&1 || need_apt+=(busybox-static)
# Multi-node tests: TLS certificates made with openssl, ssh:// against a loopback sshd; the
# token registry (TestRegistry::start_token): its token server's key and certificate.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
# `--ha etcd://…`: its tests run Debian's etcd.
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
# Registry tests: a real registry (distribution 2.8) with htpasswd authentication on loopback.
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
# The daemon's allocator, jemalloc, is built from source: a C compiler and make.
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd ..." >&2
  (dockerd >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
fi
