#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs dependencies, then builds and
# runs every test twice -- once under AddressSanitizer+UndefinedBehaviorSanitizer, then
# in the normal build with the valgrind runs included -- with bounded libFuzzer runs
# (clang) in between, so ctest's closing summary of the normal build is the last thing
# printed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${REPLCHECK_SKIP_DEPS:-}" != "1" ]; then
  bash ci/install-deps.sh
fi

jobs=2
echo "== ASan+UBSan build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DREPLCHECK_SANITIZE=ON -DREPLCHECK_BENCH=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs" -LE valgrind)

echo "== Fuzz targets (clang, libFuzzer + ASan + UBSan): bounded runs"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLCHECK_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_proto fuzz_profile fuzz_fixture fuzz_prom \
  fuzz_sutlog
bash fuzz/run.sh build-fuzz/bin "${REPLCHECK_FUZZ_SECONDS:-30}"

echo "== Normal build, tests and valgrind runs"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLCHECK_VALGRIND_TESTS=ON \
  -DREPLCHECK_BENCH=ON >/dev/null
cmake --build build -j"$jobs"
cd build && ctest --output-on-failure -j"$jobs"
