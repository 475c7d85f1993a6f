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
# The status page test loads the page in headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
cd "$top"
cargo test --workspace --all-targets "$@"
