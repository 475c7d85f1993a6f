#!/usr/bin/env bash
# Proves Refinery's own image works on the real engine: builds it (scripts/build-image.sh), then
# runs it as a user would, with the Docker socket and a git repository mounted:
#   --version; the image's io.refinery.controller label; `validate` on a read-only repo;
#   `plan` (drift found), `apply` (creates the declared container, terminates an intruder, but
#   never the Refinery container doing it), `status` and `plan` in sync, `ledger verify`;
#   and, when the binary has the `run` command, the image's default command as a daemon that
#   heals a removed container and stops cleanly on SIGTERM.
# Everything it creates carries io.refinery.test=<id> (the manifest's selector) and is removed on
# exit. Usage: test-image.sh [TAG]    REFINERY_SKIP_BUILD=1 tests an already built TAG.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-container-refinery:dev}
id="img-$(date +%s)-$$"
label="io.refinery.test=$id"
demo_image=refinery-demo:1
repo=$(mktemp -d /tmp/refinery-image-test.XXXXXX)

cleanup() {
  local ids
  ids=$(docker ps -aq --filter "label=$label" 2>/dev/null || true)
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null 2>&1 || true
  fi
  rm -rf "$repo"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# Runs the image once with the socket and the repository mounted; extra `docker run` options go
# before `--`, refinery's arguments after it.
user_opts=()
if [ "$(id -u)" -ne 0 ]; then
  user_opts=(--user "$(id -u):$(id -g)" --group-add "$(stat -c %g /var/run/docker.sock)")
fi
in_image() {
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  echo "\$ refinery $*"
  docker run --rm --label "$label" "${user_opts[@]}" \
    -v /var/run/docker.sock:/var/run/docker.sock "${opts[@]}" "$tag" "$@"
}
# expect CODE command...: runs it, fails unless it exits CODE.
expect() {
  local want=$1 got=0
  shift
  "$@" || got=$?
  [ "$got" -eq "$want" ] || fail "\`$*\` exited $got, expected $want"
}

step "checking Docker"
bash "$top/scripts/ensure-docker.sh"

if [ -z "${REFINERY_SKIP_BUILD:-}" ]; then
  step "building $tag"
  bash "$top/scripts/build-image.sh" "$tag"
fi
docker image inspect "$tag" >/dev/null 2>&1 || fail "no image \`$tag\`"

step "--version"
version=$(docker run --rm --label "$label" "$tag" --version)
echo "$version"
[[ "$version" == refinery\ * ]] || fail "unexpected --version output: $version"

step "the image marks its containers as Refinery's own"
controller=$(docker image inspect -f '{{index .Config.Labels "io.refinery.controller"}}' "$tag")
[ "$controller" = "true" ] || fail "label io.refinery.controller is \`$controller\`, expected \`true\`"
echo "io.refinery.controller=$controller"

step "a git repository with a manifest scoped to this run ($label)"
docker image inspect "$demo_image" >/dev/null 2>&1 || bash "$top/scripts/build-demo-image.sh" "$demo_image"
web="rimg-$id-web"
intruder="rimg-$id-intruder"
cat > "$repo/refinery.yaml" <<YAML
# Written by scripts/test-image.sh; Refinery sees only containers labelled $label.
config:
  mode: enforce
  selector: $label
containers:
  - name: $web
    image: $demo_image
    restart: unless-stopped
    bloodline: {creator: test-image, purpose: "proves the image acts on the engine"}
drift_rules:
  unauthorized_containers: {action: terminate, grace_period: 0}
  missing_containers: {action: recreate, grace_period: 0}
YAML
command -v git >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq git >/dev/null; }
git -C "$repo" init -q -b main 2>/dev/null || git -C "$repo" init -q
git -C "$repo" add refinery.yaml
git -C "$repo" -c user.name=test-image -c user.email=test-image@localhost commit -q -m "manifest"
echo "repository: $repo"

step "validate, repository mounted read-only"
expect 0 in_image -v "$repo:/repo:ro" -- validate --repo /repo --rev HEAD

step "an intruder nobody declared"
docker run -d --label "$label" --name "$intruder" "$demo_image" >/dev/null
echo "started $intruder"

step "plan finds drift (exit 3)"
expect 3 in_image -v "$repo:/repo" -- plan --repo /repo

step "apply from inside the image"
expect 0 in_image -v "$repo:/repo" -- apply --yes --repo /repo
[ "$(docker inspect -f '{{.State.Running}}' "$web")" = "true" ] || fail "$web is not running"
[ "$(docker inspect -f '{{index .Config.Labels "io.refinery.managed"}}' "$web")" = "true" ] \
  || fail "$web lacks io.refinery.managed"
if docker inspect "$intruder" >/dev/null 2>&1; then fail "$intruder was not terminated"; fi
echo "ok: $web created, $intruder terminated, the Refinery container left alone"

step "status and plan: in sync (the Refinery container itself is no drift)"
expect 0 in_image -v "$repo:/repo" -- status --repo /repo
expect 0 in_image -v "$repo:/repo" -- plan --repo /repo

step "ledger verify"
expect 0 in_image -v "$repo:/repo" -- ledger verify --repo /repo

step "the default command: the daemon"
if docker run --rm "$tag" --help | grep -Eq '^ +run( |$)'; then
  docker rm -f "$web" >/dev/null
  daemon="rimg-$id-daemon"
  docker run -d --name "$daemon" --label "$label" "${user_opts[@]}" \
    -v /var/run/docker.sock:/var/run/docker.sock -v "$repo:/repo" "$tag" >/dev/null
  echo "started $daemon ($(docker inspect -f '{{join .Config.Cmd " "}}' "$daemon")); removed $web"
  healed=false
  for _ in $(seq 1 60); do
    if [ "$(docker inspect -f '{{.State.Running}}' "$web" 2>/dev/null)" = "true" ]; then
      healed=true
      break
    fi
    [ "$(docker inspect -f '{{.State.Running}}' "$daemon")" = "true" ] || break
    sleep 1
  done
  $healed || { docker logs "$daemon" 2>&1 | tail -20; fail "the daemon did not recreate $web"; }
  echo "ok: the daemon recreated $web"
  start=$(date +%s)
  docker stop -t 60 "$daemon" >/dev/null
  took=$(( $(date +%s) - start ))
  code=$(docker inspect -f '{{.State.ExitCode}}' "$daemon")
  docker logs "$daemon" 2>&1 | tail -3
  [ "$code" -eq 0 ] || fail "the daemon exited $code on SIGTERM"
  echo "ok: SIGTERM → exit 0 in ${took}s"
else
  echo "skipped: this binary has no \`run\` command"
fi

size=$(docker image inspect -f '{{.Size}}' "$tag")
step "ok: $tag works ($((size / 1024 / 1024)) MiB, $size bytes)"
