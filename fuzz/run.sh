#!/usr/bin/env bash
# Bounded libFuzzer runs of every fuzz target, seeded from tests/fuzz/<target>/.
#   fuzz/run.sh BIN_DIR [SECONDS_PER_TARGET=30]
# An input that takes over 20 s counts as a finding too (-timeout), so a run stays bounded.
# A finding fails the run and is copied next to the seeds as
# tests/fuzz/<target>/crash-<sha1> -- commit it there with the fix: from then on
# tests/test_fuzz_corpora.c replays it in every build (ASan+UBSan and valgrind included).
set -euo pipefail
bin=$(cd "$1" && pwd)
seconds=${2:-30}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/replcheck-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Over-long lines (16384 bytes and more) must stay reachable for the codec.
declare -A max_len=([proto]=17000 [profile]=8192 [fixture]=8192 [prom]=16384 [sutlog]=8192)
failed=0
for target in proto profile fixture prom sutlog; do
  mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
  echo "== fuzz_$target for ${seconds}s"
  set +e
  "$bin/fuzz_$target" -max_total_time="$seconds" -timeout=20 -max_len="${max_len[$target]}" \
    $( [ -f "$src/fuzz/$target.dict" ] && echo "-dict=$src/fuzz/$target.dict") \
    -artifact_prefix="$work/$target/artifacts/" \
    -print_final_stats=1 "$work/$target/corpus" "$src/tests/fuzz/$target" \
    > "$work/$target/log.txt" 2>&1
  rc=$?
  set -e
  grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::new_units_added' \
    "$work/$target/log.txt" || true
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "FAIL: fuzz_$target found a problem (exit $rc):"
    grep -E 'ERROR|SUMMARY|invariant broken|Test unit written' "$work/$target/log.txt" | head -20
    for artifact in "$work/$target/artifacts"/*; do
      [ -f "$artifact" ] || continue
      keep="$src/tests/fuzz/$target/crash-$(sha1sum "$artifact" | cut -c1-16)"
      cp "$artifact" "$keep"
      echo "kept as $keep (add it to the repository with the fix)"
    done
  fi
done
exit $failed
