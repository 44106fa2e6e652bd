#!/usr/bin/env bash
# Run overhead: wall time of the whole suite against the reference worker, with --jobs 1
# and --jobs 2, against the sum of the waits the tests are required to make.
#   bench/run_overhead.sh BIN_DIR [PROFILE=profiles/refworker.json]
# Required waits are measured, not guessed: every wait of a test runs the mock's event
# loop, which blocks in epoll_wait (observation windows, deadlines that must expire,
# waiting for the SUT's own timers, its start-up and its answers). A third run under
# `strace -f -Y -T --seccomp-bpf -e trace=epoll_wait` sums the time the test processes
# (command name replcheck) spent blocked there; the SUT's own epoll_wait calls
# (refworker) are not counted. Everything else -- forking the supervisor and the Check
# test process, starting the SUT, stopping it, evidence, reports, the runner -- is
# overhead. Target: wall(--jobs 1) < 1.5 x required waits.
set -euo pipefail
bin=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
profile=${2:-$src/profiles/refworker.json}
work=$(mktemp -d "${TMPDIR:-/tmp}/replcheck-overhead.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/tmp"

# Runs the suite; the wall time goes to $work/<label>.wall (no command substitution:
# a subshell would run the EXIT trap).
run() { # jobs label [prefix...]
  local jobs=$1 label=$2
  shift 2
  local t0 t1
  t0=$(date +%s.%N)
  TMPDIR="$work/tmp" "$@" "$bin/replcheck" run --profile "$profile" --bin-dir "$bin" \
    --jobs "$jobs" --junit "$work/$label.xml" --progress none > "$work/$label.out" 2>&1 || true
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc > "$work/$label.wall"
}

run 1 jobs1
run 2 jobs2
run 1 strace strace -f -Y -T --seccomp-bpf -e trace=epoll_wait -o "$work/trace.txt"
wall1=$(cat "$work/jobs1.wall")
wall2=$(cat "$work/jobs2.wall")
waits=$(grep '<replcheck>' "$work/trace.txt" | grep -o '<[0-9.]*>$' | tr -d '<>' |
        awk '{s += $1} END {printf "%.1f", s}')
calls=$(grep -c '<replcheck>' "$work/trace.txt" || true)
# The tests' own durations (body to end of teardown) from the JUnit report.
bodies=$(grep -o '<testcase [^>]*time="[0-9.]*"' "$work/jobs1.xml" | grep -o 'time="[0-9.]*"' |
         tr -dc '0-9.\n' | awk '{s += $1} END {printf "%.1f", s}')
tests=$(grep -c '<testcase ' "$work/jobs1.xml" || true)
echo "suite: $tests test cases against $(basename "$profile"); $(tail -1 "$work/jobs1.out")"
echo "required waits (sum over tests, epoll_wait of the test processes): ${waits} s in $calls calls"
echo "sum of the tests' own durations (JUnit time, body to end of teardown, --jobs 1): ${bodies} s"
printf "the traced run took %.1f s\n" "$(cat "$work/strace.wall")"
printf "wall --jobs 1: %.1f s = %.2f x required waits (target < 1.5)\n" "$wall1" \
  "$(echo "$wall1 / $waits" | bc -l)"
printf "wall --jobs 2: %.1f s = %.2f x required waits\n" "$wall2" "$(echo "$wall2 / $waits" | bc -l)"
