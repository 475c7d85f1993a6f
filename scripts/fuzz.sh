#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 300), one after the other, one
# libFuzzer process at a time (niced), and prints a table: target, executions, new corpus files,
# findings. Inputs that reach new coverage are merged into fuzz/corpus/<target> (kept in git,
# minimised on every run); crashes land in fuzz/artifacts/<target>/ and make the script exit 1.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). Not run in CI: see docs/safety.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-300}
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(manifest compose ledger docker_event schedule webhook)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz on a nightly toolchain is needed" >&2
  echo "hint: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
  exit 2
fi
# No sanitizer: the code under test is safe Rust, and without ASan each target runs several times
# faster. Debug assertions stay on, so an arithmetic overflow is a finding.
flags=(--sanitizer none --debug-assertions)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"

echo "== build" >&2
nice -n 10 cargo +nightly fuzz build "${flags[@]}" >&2

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
rows=()
failed=0
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  fresh="$logs/$t-new"
  mkdir -p "$corpus" "$fresh" "artifacts/$t"
  before_artifacts=$(find "artifacts/$t" -type f | wc -l)
  echo "== $t: ${secs}s" >&2
  # New inputs go to a scratch directory; the kept corpus is read, never written to directly.
  nice -n 10 cargo +nightly fuzz run "${flags[@]}" "$t" "$fresh" "$corpus" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    >"$logs/$t.log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
  # Keep a minimal corpus: the smallest set of inputs, old and new, that covers every edge the
  # two cover (hit counts aside, so it stays small in git).
  minimised="$logs/$t-min"
  mkdir -p "$minimised"
  nice -n 10 cargo +nightly fuzz run "${flags[@]}" "$t" "$minimised" "$corpus" "$fresh" -- \
    -merge=1 -use_counters=0 -use_value_profile=0 >"$logs/$t.merge.log" 2>&1 || true
  added=$(comm -13 <(ls "$corpus" | sort) <(ls "$minimised" | sort) | wc -l)
  if [ -n "$(ls -A "$minimised")" ]; then
    rm -rf "$corpus"
    cp -r "$minimised" "$corpus"
  fi
  findings=$(( $(find "artifacts/$t" -type f | wc -l) - before_artifacts ))
  if [ "$findings" -gt 0 ]; then
    failed=1
    grep -E "panicked|ERROR: libFuzzer|SUMMARY" "$logs/$t.log" | head -5 >&2 || true
  fi
  rows+=("$t|${execs:-?}|$added|$findings")
done

printf '\n| %-12s | %12s | %18s | %8s |\n' target executions "new corpus files" findings
printf '|%s|%s|%s|%s|\n' "--------------" "--------------" "--------------------" "----------"
for r in "${rows[@]}"; do
  IFS='|' read -r t e n f <<<"$r"
  printf '| %-12s | %12s | %18s | %8s |\n' "$t" "$e" "$n" "$f"
done
exit "$failed"
