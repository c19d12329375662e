#!/usr/bin/env bash
# Runs every go test -fuzz target briefly (FUZZTIME each, default 4s): the
# seed corpora always run as unit tests; this adds a short random search.
set -euo pipefail
t=${FUZZTIME:-4s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($t)"
    go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" -fuzzminimizetime=2s "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
  done
done
rm -f /tmp/fuzz-$$.log
