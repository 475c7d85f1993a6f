#!/usr/bin/env bash
# The whole test suite: starts what it needs (Docker, busybox-static), then runs every test of
# the workspace against the real engine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/ensure-docker.sh"
cd "$top"
cargo test --workspace --all-targets "$@"
