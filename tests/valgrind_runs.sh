#!/usr/bin/env bash
# Valgrind memcheck over the harness, the mock homeserver and the reference worker on
# real runs: errors and definite leaks fail the test.
#   1. replcheck (CK_FORK=no, so the tests run inside the valgrind'ed process) runs a
#      test of each area against refworker, itself under valgrind: the opening, lines
#      over the limit and lines the mock rejects, a reconnect, a ping timeout, RDATA
#      batches, a POSITION gap fetched over the mock's HTTP side, SIGTERM;
#   1b. the same for the database suite (--db, the run's PostgreSQL cluster);
#   2. replcheck under valgrind against hostile SUTs (tests/hostile/: a flood of garbage,
#      a crash, children left behind): the failure path, evidence and teardown notes;
#   3. the standalone mockhs under valgrind serves a refworker until both are stopped;
#   4. mockhs --fixture under valgrind plays two seed fixtures to a refworker: metric
#      steps (scrapes of its metrics) and sut-http steps (requests to its listener).
# Usage: valgrind_runs.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/replcheck-valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT
vg=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
    --track-fds=no)

cat > "$work/refworker-valgrind.json" <<JSON
{
  "format": 1,
  "name": "refworker under valgrind",
  "dialect": "modern",
  "era": "1.66",
  "command": ["valgrind", "--quiet", "--leak-check=full", "--errors-for-leak-kinds=definite",
              "--error-exitcode=99", "--log-file={work_dir}/valgrind-refworker.%p.txt",
              "{bin_dir}/refworker", "--host", "{repl_host}", "--port", "{repl_port}",
              "--server-name", "{server_name}", "--dialect", "modern", "--log", "{log_path}",
              "--http-url", "{http_url}",
              "--ping-interval-ms", "250", "--ping-timeout-ms", "1250",
              "--reconnect-initial-ms", "50", "--reconnect-max-ms", "250"],
  "timing": {"ping_interval_ms": 250, "ping_timeout_ms": 1250, "reconnect_initial_ms": 50,
             "reconnect_max_ms": 250, "startup_timeout_ms": 20000, "shutdown_grace_ms": 10000}
}
JSON

echo "== replcheck and refworker under valgrind"
set +e
CK_FORK=no timeout 600 "${vg[@]}" --log-file="$work/valgrind-replcheck.txt" \
  "$bin/replcheck" run --profile "$work/refworker-valgrind.json" --bin-dir "$bin" \
  --filter protocol/handshake/ping-on-connect --filter protocol/handshake/name-first \
  --filter protocol/shutdown/sigterm-closes --filter protocol/framing/over-long-error \
  --filter protocol/framing/bad-arguments-close --filter protocol/reconnect/after-loss \
  --filter protocol/keepalive/ping-timeout --filter protocol/rdata/batch-applied \
  --filter protocol/position/gap-fetched --keep-logs --junit "$work/report.xml" \
  | tee "$work/run.txt"
rc=${PIPESTATUS[0]}
set -e
cat "$work/valgrind-replcheck.txt"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: replcheck under valgrind exited with $rc (99 = valgrind found errors or leaks)"
  exit 1
fi
# The refworker valgrind logs of a kept run (its output in $1) must all be empty.
check_refworker_logs() {
  local run_dir logs
  run_dir=$(sed -n 's/^Work directories (SUT logs, outputs): //p' "$1")
  logs=$(find "$run_dir" -name 'valgrind-refworker.*.txt')
  [ -n "$logs" ] || { echo "FAIL: no refworker valgrind log under $run_dir"; exit 1; }
  for log in $logs; do
    if [ -s "$log" ]; then
      echo "FAIL: valgrind reported on refworker ($log):"; cat "$log"; exit 1
    fi
  done
  grep -q 'exited with status 99' -r "$run_dir" && { echo "FAIL: refworker exit 99"; exit 1; }
  echo "refworker: $(echo "$logs" | wc -l) run(s), valgrind clean"
  rm -rf "$run_dir"
}
check_refworker_logs "$work/run.txt"

# The database path (about 10 s): the run's PostgreSQL cluster, a database per test, the
# observer and the DB-03 sampler in replcheck; --db in refworker.
echo "== replcheck and refworker --db under valgrind (PostgreSQL cluster)"
sed -e 's/"name": "refworker under valgrind"/"name": "refworker --db under valgrind", "roles": ["worker", "pg"], "database": {"pool_max": 1}/' \
    -e 's/"--reconnect-max-ms", "250"\]/"--reconnect-max-ms", "250", "--db", "{db_dsn}"]/' \
    "$work/refworker-valgrind.json" > "$work/refworker-pg-valgrind.json"
grep -q '{db_dsn}' "$work/refworker-pg-valgrind.json" || { echo "FAIL: pg profile not made"; exit 1; }
set +e
CK_FORK=no timeout 600 "${vg[@]}" --log-file="$work/valgrind-replcheck-pg.txt" \
  "$bin/replcheck" run --profile "$work/refworker-pg-valgrind.json" --bin-dir "$bin" \
  --filter db/shutdown/sessions-gone --filter db/txn/not-from-sentinel --keep-logs \
  --junit "$work/report-pg.xml" | tee "$work/run-pg.txt"
rc=${PIPESTATUS[0]}
set -e
cat "$work/valgrind-replcheck-pg.txt"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: replcheck (database) under valgrind exited with $rc (99 = valgrind found errors or leaks)"
  exit 1
fi
check_refworker_logs "$work/run-pg.txt"

echo "== replcheck under valgrind against hostile SUTs (failure, evidence, teardown)"
for mode in flood crash forks; do
  target=protocol/keepalive/idle-pinging-mock
  [ "$mode" = forks ] && target=protocol/shutdown/sigterm-closes
  cat > "$work/hostile-$mode.json" <<JSON
{"format": 1, "name": "hostile $mode under valgrind", "dialect": "modern", "era": "1.66",
 "command": ["{bin_dir}/hostile_$mode", "--target", "$(echo "$target" | tr / _)",
             "--work-dir", "{work_dir}", "--host", "{repl_host}", "--port", "{repl_port}",
             "--log", "{log_path}", "--bytes", "5000000", "--count", "2", "--",
             "{bin_dir}/refworker", "--host", "{repl_host}", "--port", "{repl_port}",
             "--server-name", "{server_name}", "--dialect", "modern", "--log", "{log_path}",
             "--ping-interval-ms", "250", "--ping-timeout-ms", "1250"],
 "log": {"path": "{log_path}"},
 "timing": {"ping_interval_ms": 250, "ping_timeout_ms": 1250, "startup_timeout_ms": 20000,
            "shutdown_grace_ms": 5000}}
JSON
  set +e
  CK_FORK=no timeout 600 "${vg[@]}" --log-file="$work/valgrind-hostile-$mode.txt" \
    "$bin/replcheck" run --profile "$work/hostile-$mode.json" --bin-dir "$bin" \
    --junit "$work/hostile-$mode.xml" --progress plain "$target" > "$work/hostile-$mode.out" 2>&1
  rc=$?
  set -e
  grep -E '^\[' "$work/hostile-$mode.out" || true
  cat "$work/valgrind-hostile-$mode.txt"
  if [ "$rc" -ne 1 ] || [ -s "$work/valgrind-hostile-$mode.txt" ]; then
    echo "FAIL: replcheck against hostile_$mode under valgrind exited with $rc (expected 1: the test fails; 99 = valgrind errors)"
    tail -20 "$work/hostile-$mode.out"
    exit 1
  fi
  rm -rf "$(sed -n 's/^Work directories (SUT logs, outputs): //p' "$work/hostile-$mode.out")"
done

echo "== mockhs under valgrind with a refworker client"
"${vg[@]}" --log-file="$work/valgrind-mockhs.txt" "$bin/mockhs" --port 0 \
  --ping-interval-ms 200 > "$work/mockhs.out" 2>&1 &
mock=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/^mockhs: listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/mockhs.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: mockhs did not start"; cat "$work/mockhs.out"; kill -9 $mock; exit 1; }
"$bin/refworker" --host 127.0.0.1 --port "$port" --server-name test.local --dialect modern \
  --log "$work/refworker.log" --ping-interval-ms 200 > /dev/null 2>&1 &
worker=$!
for _ in $(seq 1 200); do
  grep -q '< REPLICATE' "$work/mockhs.out" && break
  sleep 0.05
done
kill -TERM $worker; wait $worker || true
kill -TERM $mock
set +e
wait $mock
mrc=$?
set -e
cat "$work/mockhs.out" | head -20
cat "$work/valgrind-mockhs.txt"
grep -q '< REPLICATE' "$work/mockhs.out" || { echo "FAIL: no handshake seen by mockhs"; exit 1; }
[ "$mrc" -eq 0 ] || { echo "FAIL: mockhs under valgrind exited with $mrc"; exit 1; }

echo "== mockhs --fixture under valgrind: metric and sut-http steps against refworker"
# refworker's HTTP port must be known before mockhs starts (it is on mockhs's command line)
serve=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for fixture in handlers-in-background server-header-on-errors; do
  "${vg[@]}" --log-file="$work/valgrind-fixture-$fixture.txt" "$bin/mockhs" \
    --fixture "$src/fixtures/seeds/$fixture.fixture" --server-name test.local \
    --connect-timeout-ms 20000 --sut-metrics "http://127.0.0.1:$serve/metrics" \
    --sut-http "http://127.0.0.1:$serve" > "$work/fixture-$fixture.out" 2>&1 &
  mock=$!
  ports=""
  for _ in $(seq 1 200); do
    ports=$(sed -n 's/^mockhs: playing .*listening on 127.0.0.1:\([0-9]*\), HTTP on 127.0.0.1:\([0-9]*\),.*/\1 \2/p' \
      "$work/fixture-$fixture.out")
    [ -n "$ports" ] && break
    sleep 0.05
  done
  [ -n "$ports" ] || { echo "FAIL: mockhs --fixture did not start"; cat "$work/fixture-$fixture.out"; kill -9 $mock; exit 1; }
  set -- $ports
  "$bin/refworker" --host 127.0.0.1 --port "$1" --server-name test.local --dialect modern \
    --log "$work/refworker-$fixture.log" --http-url "http://127.0.0.1:$2" \
    --http-port "$serve" > /dev/null 2>&1 &
  worker=$!
  set +e
  wait $mock
  mrc=$?
  set -e
  kill -TERM $worker; wait $worker || true
  grep -E '^(step|mockhs: (PASSED|FAILED|ERROR))' "$work/fixture-$fixture.out" || true
  cat "$work/valgrind-fixture-$fixture.txt"
  if [ "$mrc" -ne 0 ] || [ -s "$work/valgrind-fixture-$fixture.txt" ]; then
    echo "FAIL: mockhs --fixture $fixture under valgrind exited with $mrc (0 = every step passed; 99 = valgrind errors)"
    tail -30 "$work/fixture-$fixture.out"
    exit 1
  fi
done
echo "valgrind runs: clean"
