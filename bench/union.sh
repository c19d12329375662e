#!/bin/bash
# Side-by-side union filesystem benchmark: kernel overlayfs over a
# loop-mounted ext4 image, fuse-overlayfs over the same tree extracted to a
# directory, and `vmroot mount` reading the same image in place.
# Usage: bench/union.sh [SCALE]   (SCALE=1: 20,000 entries, 1 GiB file)
# Needs root, mke2fs, fuse-overlayfs. Prints a table of seconds.
set -euo pipefail
SCALE=${1:-1}
ENTRIES=$((20000 * SCALE))
BIGMB=$((1024 * SCALE))
W=$(mktemp -d /var/tmp/vmroot-bench.XXXXXX)
VMROOT=${VMROOT:-$W/vmroot}
cleanup() {
	for m in "$W"/mnt-*; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	umount "$W/loop" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
[ -x "$VMROOT" ] || (cd "$(dirname "$0")/.." && go build -o "$VMROOT" ./cmd/vmroot)

# The tree: directories of 50 small files, a subtree to delete and chmod, a big file.
mkdir -p "$W/tree"
python3 - "$W/tree" "$ENTRIES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
made = 0
d = 0
while made < n:
    dp = os.path.join(root, "usr", "d%03d" % (d // 20), "s%04d" % d)
    os.makedirs(dp, exist_ok=True)
    made += 1
    for i in range(50):
        with open(os.path.join(dp, "f%02d" % i), "wb") as f:
            f.write(os.urandom(512 + (i * 97) % 6000))
        made += 1
    d += 1
os.makedirs(os.path.join(root, "data"), exist_ok=True)
PY
dd if=/dev/urandom of="$W/tree/data/big" bs=1M count="$BIGMB" status=none
mkdir -p "$W/untar-src"; for i in $(seq 1 160); do mkdir -p "$W/untar-src/p$i"; for j in $(seq 1 50); do echo "file $i $j" > "$W/untar-src/p$i/f$j"; done; done
tar -C "$W/untar-src" -cf "$W/untar.tar" .
SIZE=$(( (BIGMB + 600) * 1024 * 1024 ))
mke2fs -q -t ext4 -b 4096 -d "$W/tree" "$W/base.img" "$((SIZE / 1024))k"
sha_before=$(sha256sum "$W/base.img" | cut -d' ' -f1)
mkdir -p "$W/loop"; mount -o loop,ro "$W/base.img" "$W/loop"

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

setup() { # kind -> mounts $W/mnt-$kind with a fresh upper
	local k=$1 m="$W/mnt-$1"
	umount "$m" 2>/dev/null || true
	rm -rf "$W/up-$k" "$W/work-$k"; mkdir -p "$m" "$W/up-$k" "$W/work-$k"
	case $k in
	overlay) mount -t overlay overlay -o "lowerdir=$W/loop,upperdir=$W/up-$k,workdir=$W/work-$k" "$m" ;;
	fuse-overlayfs) fuse-overlayfs -o "lowerdir=$W/tree,upperdir=$W/up-$k,workdir=$W/work-$k" "$m" ;;
	vmroot) "$VMROOT" mount --diff "$W/up-$k" "$W/base.img" "$m" ;;
	esac
}

KINDS="overlay fuse-overlayfs vmroot"
declare -A R
for k in $KINDS; do
	m="$W/mnt-$k"
	setup "$k"; drop
	R[$k,walkcold]=$(t find "$m/usr" -printf '%s %m\n')
	R[$k,walkwarm]=$(t find "$m/usr" -printf '%s %m\n')
	drop
	R[$k,readsmall]=$(t sh -c "find '$m/usr' -type f -print0 | xargs -0 cat")
	drop
	R[$k,readbig]=$(t cat "$m/data/big")
	R[$k,appendbig]=$(t sh -c "echo x >> '$m/data/big'")
	R[$k,untar]=$(t tar -C "$m" -xf "$W/untar.tar")
	R[$k,chmod]=$(t chmod -R go-w "$m/usr/d001")
	R[$k,rmrf]=$(t rm -rf "$m/usr/d002" "$m/usr/d003")
	umount "$m"
done
umount "$W/loop"
sha_after=$(sha256sum "$W/base.img" | cut -d' ' -f1)

printf '%-34s %10s %15s %10s\n' "seconds ($ENTRIES entries, $BIGMB MiB)" overlay fuse-overlayfs vmroot
for row in "walkcold:stat walk, cold" "walkwarm:stat walk, warm" "readsmall:read all small files" \
	"readbig:read big base file (cold)" "appendbig:copy-up big file by append" "untar:untar 8,000 files" \
	"rmrf:rm -rf lower tree (2,040)" "chmod:chmod -R lower tree (1,020)"; do
	key=${row%%:*}; label=${row#*:}
	printf '%-34s %10.3f %15.3f %10.3f\n' "$label" "${R[overlay,$key]}" "${R[fuse-overlayfs,$key]}" "${R[vmroot,$key]}"
done
[ "$sha_before" = "$sha_after" ] && echo "base image unchanged (sha256 $sha_before)" || { echo "BASE IMAGE CHANGED"; exit 1; }
