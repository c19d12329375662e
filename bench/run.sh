#!/usr/bin/env bash
# Runs every side-by-side benchmark script in bench/.
set -euo pipefail
cd "$(dirname "$0")"
# Peers that only the benchmarks use (bench/nfs.sh installs its own).
if [ "$(id -u)" = 0 ] && ! command -v fuse-overlayfs >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fuse-overlayfs >/dev/null
fi
for s in ./image.sh ./union.sh ./nfs.sh ./installer.sh ./netboot.sh; do
  echo "== $s"
  "$s"
done
