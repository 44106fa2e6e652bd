#!/usr/bin/env bash
# `cmake --install` puts the programs, profiles, fixtures, docs and man pages in place,
# and the installed replcheck works from there.
set -euo pipefail
build=$1
prefix=$(mktemp -d "${TMPDIR:-/tmp}/replcheck-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > /dev/null
for f in bin/replcheck bin/mockhs bin/refworker share/replcheck/profiles/refworker.json \
         share/man/man1/replcheck.1 share/man/man1/mockhs.1 share/doc/replcheck/PROFILES.md \
         share/doc/replcheck/TESTS.md; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
ls "$prefix"/share/replcheck/fixtures/*/*.fixture > /dev/null
head -1 "$prefix/share/man/man1/replcheck.1" | grep -q '^\.TH REPLCHECK 1'
"$prefix/bin/replcheck" list --fixtures "$prefix/share/replcheck/fixtures" > "$prefix/list.txt"
grep -q 'protocol/handshake/ping-on-connect' "$prefix/list.txt"
"$prefix/bin/replcheck" run --profile "$prefix/share/replcheck/profiles/refworker.json" \
  --fixtures "$prefix/share/replcheck/fixtures" protocol/handshake/name-first \
  --junit "$prefix/r.xml" > "$prefix/run.txt"
tail -1 "$prefix/run.txt"
echo "install layout: ok"
