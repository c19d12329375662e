#!/usr/bin/env bash
# Runs every side-by-side benchmark script in bench/.
set -euo pipefail
cd "$(dirname "$0")"
for s in ./image.sh $(ls ./union*.sh ./nfs*.sh 2>/dev/null || true); do
  echo "== $s"
  "$s"
done
