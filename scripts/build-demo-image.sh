#!/usr/bin/env bash
# Builds a tiny image from Debian's busybox-static with `docker import` (no registry, no builder).
# Usage: build-demo-image.sh TAG
set -euo pipefail
tag=${1:-refinery-demo:1}
bb=$(command -v busybox)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/www" "$root/data" "$root/tmp"
cp "$bb" "$root/bin/busybox"
for app in sh sleep httpd wget echo cat true false kill ls ps env; do ln -s busybox "$root/bin/$app"; done
echo "hello from refinery" > "$root/www/index.html"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'CMD ["sh", "-c", "trap \"exit 0\" TERM; while true; do sleep 1 & wait $!; done"]' \
  - "$tag" >/dev/null
echo "built $tag" >&2
