#!/usr/bin/env bash
# Fails when docs/TESTS.md no longer matches the registry (regenerate with
# ci/gen-tests-doc.sh build/bin/replcheck ../shared/spec/requirements.md docs/TESTS.md).
set -euo pipefail
bin=$1
src=$2
shared=$3
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bash "$src/ci/gen-tests-doc.sh" "$bin/replcheck" "$shared/spec/requirements.md" "$tmp"
if ! diff -u "$src/docs/TESTS.md" "$tmp"; then
  echo "docs/TESTS.md is stale: run ci/gen-tests-doc.sh $bin/replcheck $shared/spec/requirements.md docs/TESTS.md"
  exit 1
fi
echo "docs/TESTS.md is current"
