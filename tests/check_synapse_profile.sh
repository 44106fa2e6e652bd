#!/usr/bin/env bash
# Runs one of the real-Synapse profiles (profiles/synapse-*.json) against the real
# Synapse release it names, when the environment says where that Synapse is:
#   $PYTHON_VAR        a Python that imports the matching synapse (REPLCHECK_SYNAPSE_1_66_PYTHON, ...)
#   REPLCHECK_DB_DSN   the PostgreSQL database the profile's setup prepares (or the
#                      release's own REPLCHECK_SYNAPSE_1_66_DB_DSN, ...)
#   REPLCHECK_SYNAPSE_SELECT  optional: test selector (default: every test not tagged slow)
# Without them (CI has no Synapse) it reports SKIP (exit 77) with the reason. The run
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
# Each release needs a database of its own (the schemas differ): a per-release
# variable (REPLCHECK_SYNAPSE_1_66_DB_DSN, ...) wins over REPLCHECK_DB_DSN.
dsn_var=${python_var%_PYTHON}_DB_DSN
[ -n "${!dsn_var:-}" ] && export REPLCHECK_DB_DSN=${!dsn_var}
if [ -z "${REPLCHECK_DB_DSN:-}" ]; then
  echo "SKIP: neither $dsn_var nor REPLCHECK_DB_DSN is set (the PostgreSQL database for $profile)"
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
