#!/usr/bin/env bash
# Builds Refinery's own image with the local engine, from a static binary built here (nothing is
# pulled): static release binary → target/image/ → `docker build` (classic builder) of Dockerfile.
# Usage: build-image.sh [TAG]            (default container-refinery:dev)
#   REFINERY_BINARY=path   skip cargo and package this (static) binary instead
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-container-refinery:dev}
cd "$top"

# musl when its target is installed, else glibc linked statically. The explicit --target keeps
# +crt-static off build scripts and proc-macros, which must stay dynamic.
if [ -z "${REFINERY_BINARY:-}" ]; then
  if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
  else
    target=x86_64-unknown-linux-gnu
  fi
  echo "building refinery (release, static, $target) ..." >&2
  RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target" -p refinery-cli
  REFINERY_BINARY="$top/target/$target/release/refinery"
fi

# An empty image has no loader: refuse a dynamically linked binary instead of shipping one that
# fails with a puzzling `no such file or directory`.
if ! file -L "$REFINERY_BINARY" | grep -Eq 'statically linked|static-pie linked'; then
  echo "error: \`$REFINERY_BINARY\` is not statically linked:" >&2
  file -L "$REFINERY_BINARY" >&2
  exit 1
fi

stage="$top/target/image"
rm -rf "$stage"
mkdir -p "$stage/rootfs/tmp"
chmod 1777 "$stage/rootfs/tmp"
cp "$REFINERY_BINARY" "$stage/refinery"
strip "$stage/refinery" 2>/dev/null || true
chmod 0755 "$stage/refinery"
# CA certificates are optional (only https webhooks and git remotes need them).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$stage/rootfs/etc/ssl/certs/ca-certificates.crt"
fi

version=$("$stage/refinery" --version | awk '{print $2}')
echo "building image $tag (refinery $version) ..." >&2
DOCKER_BUILDKIT=0 docker build -q --force-rm --build-arg "VERSION=$version" -f Dockerfile -t "$tag" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "built $tag: $((size / 1024 / 1024)) MiB ($size bytes)" >&2
