#!/usr/bin/env bash
# Runs one of the real-Synapse profiles (profiles/synapse-*.json) against the real
# Synapse release it names, when the environment says where that Synapse is:
#   $PYTHON_VAR        a Python that imports the matching synapse (REPLCHECK_SYNAPSE_1_66_PYTHON, ...)
#   REPLCHECK_SYNAPSE_SELECT  optional: test selector (default: every test not tagged slow)
# The database is the run's own PostgreSQL cluster (role pg), whose template the
# profile's setup step fills with Synapse's schema: nothing to provide.
# Without the Python (CI has no Synapse) it reports SKIP (exit 77) with the reason. The run
# passes when every test passes, is skipped with a reason, or fails as listed in the
# profile's expected-failures file (docs/PROFILES.md, "Real Synapse").
set -uo pipefail
bin_dir=$1 source_dir=$2 profile=$3 python_var=$4
profile_path=$source_dir/profiles/$profile.json
xfail=$source_dir/profiles/$profile.expected-failures
python=${!python_var:-}
if [ -z "$python" ]; then
  echo "SKIP: $python_var is not set (a Python with the Synapse release of $profile installed)"
  exit 77
fi
if ! "$python" -c 'import synapse' 2> /dev/null; then
  echo "FAIL: $python_var=$python cannot import synapse"
  exit 1
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/replcheck-synapse.XXXXXX")
trap 'rm -rf "$out"' EXIT
args=(run --profile "$profile_path" --junit "$out/junit.xml" --progress plain)
[ -f "$xfail" ] && args+=(--expected-failures "$xfail")
"$bin_dir/replcheck" "${args[@]}" "${REPLCHECK_SYNAPSE_SELECT:-!tag:slow}"
rc=$?
[ $rc -eq 0 ] && echo "$profile: every selected test passed, was skipped with a reason, or failed as expected"
exit $rc
