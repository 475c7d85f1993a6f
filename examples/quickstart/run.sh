#!/usr/bin/env bash
# The quickstart, end to end on this machine's Docker engine:
#   1. makes sure Docker answers (installs Debian's docker.io and starts dockerd if not),
#   2. builds the demo image from Debian's busybox-static (nothing is pulled),
#   3. makes a git repository of this example and commits it,
#   4. `refinery apply`, `refinery status`,
#   5. kills a container and shows `refinery plan` find it, then heals it with `apply`,
#   6. starts the daemon, `refinery run`, kills the container again and watches it heal by itself.
# Pass --cleanup to remove what it created at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cleanup=false
[ "${1:-}" = "--cleanup" ] && cleanup=true

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "checking Docker"
bash "$top/scripts/ensure-docker.sh"
docker info --format 'engine {{.ServerVersion}} on {{.OperatingSystem}}'

step "building refinery"
cargo build -q -p refinery-cli --manifest-path "$top/Cargo.toml"
refinery="${CARGO_TARGET_DIR:-$top/target}/debug/refinery"

step "building the demo image refinery-demo:1 from busybox-static"
bash "$top/scripts/build-demo-image.sh" refinery-demo:1

step "committing the example to a fresh git repository"
repo=${REFINERY_QUICKSTART_DIR:-$(mktemp -d /tmp/refinery-quickstart.XXXXXX)}
cp "$here/refinery.yaml" "$repo/"
command -v git >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq git >/dev/null; }
git -C "$repo" init -q -b main 2>/dev/null || git -C "$repo" init -q
git -C "$repo" add refinery.yaml
git -C "$repo" -c user.name=quickstart -c user.email=quickstart@localhost commit -q -m "quickstart manifest"
echo "repository: $repo"

run() { echo "\$ refinery $*"; "$refinery" --repo "$repo" "$@"; }

step "validate"
run validate

step "apply"
run apply --yes

step "status"
run status

step "kill qs-web behind Refinery's back, and plan"
docker kill qs-web >/dev/null
set +e
run plan
code=$?
set -e
echo "(plan exited $code: 3 means drift found)"
[ "$code" -eq 3 ] || { echo "expected plan to find drift" >&2; exit 1; }

step "apply heals it"
run apply --yes
run plan

step "the daemon: refinery run heals by itself"
log=$(mktemp /tmp/refinery-quickstart-daemon.XXXXXX)
"$refinery" --repo "$repo" run --poll-interval 500ms 2>"$log" &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true' EXIT
sleep 1
echo "\$ docker kill qs-web"
docker kill qs-web >/dev/null
killed=$(date +%s%N)
for _ in $(seq 1 200); do
  [ "$(docker inspect -f '{{.State.Status}}' qs-web 2>/dev/null)" = running ] && break
  sleep 0.05
done
[ "$(docker inspect -f '{{.State.Status}}' qs-web)" = running ] || { cat "$log" >&2; echo "the daemon did not heal qs-web" >&2; exit 1; }
echo "qs-web running again after $(( ($(date +%s%N) - killed) / 1000000 )) ms"
kill -TERM "$daemon"
wait "$daemon" || { cat "$log" >&2; echo "the daemon did not stop cleanly" >&2; exit 1; }
trap - EXIT
echo "daemon log:"
sed 's/^/  /' "$log"
rm -f "$log"

step "the ledger: what happened, hash-chained and committed to refs/heads/refinery/ledger"
run ledger show
run ledger verify
git -C "$repo" log --oneline refinery/ledger

if $cleanup; then
  step "cleaning up"
  docker rm -f qs-web qs-worker >/dev/null 2>&1 || true
  docker volume rm qs-data >/dev/null 2>&1 || true
  rm -rf "$repo"
fi
