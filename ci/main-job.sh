#!/usr/bin/env bash
# The main job (README's first command): install dependencies, build, and run every
# suite against the bundled reference worker in both dialects, as a plain worker (over TCP
# and over Redis) and as a federation sender (presence suite), the database suite with
# PostgreSQL (also with the federation sender storing its position) and the outbound
# suite with the sync and client roles. Reports go to reports/.
# Exit status: that of the worst replcheck run (0 all passed, 1 failures, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${REPLCHECK_SKIP_DEPS:-}" != "1" ]; then
  bash ci/install-deps.sh || exit 2
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 2
cmake --build build -j2 || exit 2
mkdir -p reports
status=0
for profile in profiles/refworker.json profiles/refworker-2018.json \
    profiles/refworker-fedsender-2018.json profiles/refworker-fedsender.json \
    profiles/refworker-redis.json; do
  name=$(basename "$profile" .json)
  echo "== replcheck run --profile $profile"
  build/bin/replcheck run --profile "$profile" --junit "reports/$name.junit.xml"
  rc=$?
  [ "$rc" -gt "$status" ] && status=$rc
done
# The database suite against refworker with PostgreSQL (the harness starts its own
# throwaway cluster; no system service is needed).
echo "== replcheck run --profile profiles/refworker-pg.json 'db/*'"
build/bin/replcheck run --profile profiles/refworker-pg.json --jobs 2 'db/*' \
  --junit reports/refworker-pg.junit.xml
rc=$?
[ "$rc" -gt "$status" ] && status=$rc
# The outbound suite (roles sync and client: USER_SYNC, CLEAR_USER_SYNC, USER_IP) in both
# dialects and over Redis; the rest of the suite is the plain profiles' above.
for profile in profiles/refworker-sync.json profiles/refworker-sync-2018.json \
    profiles/refworker-sync-redis.json; do
  name=$(basename "$profile" .json)
  echo "== replcheck run --profile $profile 'outbound/*'"
  build/bin/replcheck run --profile "$profile" --jobs 2 'outbound/*' --junit "reports/$name.junit.xml"
  rc=$?
  [ "$rc" -gt "$status" ] && status=$rc
done
# The federation sender with a database: the tests that hold (RC-07) or break (BG-08) the
# write of its position, and the federation and database suites around them.
echo "== replcheck run --profile profiles/refworker-fedsender-pg.json (federation, position, db)"
build/bin/replcheck run --profile profiles/refworker-fedsender-pg.json --jobs 2 'federation/*' \
  'protocol/reconnect/*' 'background/federation-position/*' 'db/*' \
  --junit reports/refworker-fedsender-pg.junit.xml
rc=$?
[ "$rc" -gt "$status" ] && status=$rc
echo "Reports: $(ls reports/*.xml | tr '\n' ' ')"
exit "$status"
