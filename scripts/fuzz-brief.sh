#!/usr/bin/env bash
# Runs every go test -fuzz target briefly (FUZZTIME each, default 5s): the
# seed corpora always run as unit tests; this adds a short random search.
set -euo pipefail
t=${FUZZTIME:-5s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
  done
done
rm -f /tmp/fuzz-$$.log
