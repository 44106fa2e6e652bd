#!/usr/bin/env bash
# Memory soak: peak RSS of mockhs and of replcheck while a SUT sends them 1,000,000
# commands (bench_soak_sut: valid PING lines as fast as they are taken).
#   bench/run_soak.sh BIN_DIR [COMMANDS=1000000]
# 1. the standalone mockhs, its transcript to a file; VmRSS sampled every 0.05 s next
#    to the SUT's progress; VmHWM at the end;
# 2. replcheck running protocol/keepalive/idle-pinging-mock (a 12 s window at a 1 s
#    keepalive) against the soak SUT; the test process (where the mock lives) sampled
#    the same way; replcheck's peak from getrusage (largest process of its tree).
# Target: flat (no growth with the commands taken), under 32 MiB.
set -euo pipefail
bin=$(cd "$1" && pwd)
count=${2:-1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/replcheck-soak.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# replcheck's own processes: the run and its descendants named replcheck (other
# replcheck runs on the machine are not ours).
tree_pids() {
  local p
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = replcheck ] && echo "$p"
    tree_pids "$p"
  done
}
progress() { { grep -o 'soak: [a-z]* [0-9]*' "$1" 2>/dev/null || true; } | tail -1; }

echo "== mockhs, $count commands"
"$bin/mockhs" --port 0 --ping-interval-ms 1000 > "$work/mockhs.out" 2>&1 &
mock=$!
pids+=("$mock")
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/^mockhs: listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/mockhs.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "mockhs did not start"; exit 1; }
"$bin/bench_soak_sut" --target soak --work-dir soak --host 127.0.0.1 --port "$port" \
  --log "$work/soak-sut.log" --count "$count" -- /bin/false > /dev/null 2>&1 &
sut=$!
pids+=("$sut")
printf "%8s  %-32s %s\n" "seconds" "SUT progress" "mockhs VmRSS (KiB)"
start=$(date +%s.%N)
deadline=$((SECONDS + 300))
while ! grep -q 'soak: done' "$work/soak-sut.log" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "soak did not finish in 300 s"; exit 1; }
  printf "%8.1f  %-32s %s\n" "$(echo "$(date +%s.%N) - $start" | bc)" "$(progress "$work/soak-sut.log")" "$(rss_kb "$mock")"
  sleep 0.05
done
sleep 0.5 # the mock takes the last lines
printf "%8.1f  %-32s %s\n" "$(echo "$(date +%s.%N) - $start" | bc)" "$(progress "$work/soak-sut.log")" "$(rss_kb "$mock")"
lines=$(grep -c ' < PING ' "$work/mockhs.out" || true)
echo "mockhs: $lines SUT lines in its transcript; peak RSS (VmHWM) $(hwm_kb "$mock") KiB"
kill "$sut" "$mock"
wait "$mock" 2>/dev/null || true

echo "== replcheck, $count commands in protocol/keepalive/idle-pinging-mock"
cat > "$work/soak.json" <<JSON
{"format": 1, "name": "soak", "dialect": "modern", "era": "1.66",
 "command": ["{bin_dir}/bench_soak_sut", "--target", "keepalive_idle-pinging-mock",
             "--work-dir", "{work_dir}", "--host", "{repl_host}", "--port", "{repl_port}",
             "--log", "{log_path}", "--count", "$count", "--", "/bin/false"],
 "log": {"path": "{log_path}"},
 "timing": {"ping_interval_ms": 1000, "ping_timeout_ms": 5000, "startup_timeout_ms": 10000,
            "shutdown_grace_ms": 2000}}
JSON
mkdir "$work/tmp"
TMPDIR="$work/tmp" /usr/bin/time -f "%M" -o "$work/time.txt" "$bin/replcheck" run \
  --profile "$work/soak.json" --bin-dir "$bin" --junit "$work/soak.xml" --progress plain \
  protocol/keepalive/idle-pinging-mock > "$work/replcheck.out" 2>&1 &
run=$!
pids+=("$run")
printf "%8s  %-32s %s\n" "seconds" "SUT progress" "largest replcheck process VmRSS (KiB)"
start=$(date +%s.%N)
peak=0
while kill -0 "$run" 2>/dev/null; do
  log=$(ls "$work"/tmp/replcheck-*/*/sut.log 2>/dev/null | head -1 || true)
  big=0
  for p in "$run" $(tree_pids "$run"); do
    r=$(rss_kb "$p")
    [ "${r:-0}" -gt "$big" ] && big=$r
  done
  [ "$big" -gt "$peak" ] && peak=$big
  printf "%8.1f  %-32s %s\n" "$(echo "$(date +%s.%N) - $start" | bc)" "$( [ -n "$log" ] && progress "$log")" "$big"
  sleep 0.2
done
wait "$run" || true
tail -3 "$work/replcheck.out"
echo "replcheck: largest sampled VmRSS $peak KiB; peak RSS of its process tree (getrusage) $(tail -1 "$work/time.txt") KiB"
