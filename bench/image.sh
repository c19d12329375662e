#!/usr/bin/env bash
# bench/image.sh: the image stack against its peers, side by side in one run.
#  1. extract a 2 GiB partition from a twoGbMaxExtentFlat and a
#     twoGbMaxExtentSparse VMDK: `vmroot extract -p 2` vs
#     `qemu-img convert -O raw` of the same byte range (qemu's raw driver with
#     offset/size over the vmdk, so both produce the same file);
#  2. copy a 10,000-file tree out of an ext4 image: `vmroot cp -r` vs
#     `debugfs -R rdump`;
# with wall time (best of RUNS) and peak RSS (/usr/bin/time) for each.
# Caches are dropped before every run when we are root ("cold"); else warm.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
W=${BENCH_DIR:-$(mktemp -d /var/tmp/vmroot-bench.XXXX)}
trap 'rm -rf "$W"' EXIT
make -s build
V=$PWD/bin/vmroot
cold() { if [ "$(id -u)" = 0 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi; }
# measure LABEL CMD...: best wall seconds and max RSS (MiB) over RUNS runs.
measure() {
  local label=$1; shift
  local best= rss=0
  for i in $(seq "$RUNS"); do
    rm -rf "$W/out"; mkdir -p "$W/out"; cold
    /usr/bin/time -f '%e %M' -o "$W/t" "$@" >/dev/null 2>"$W/err" || { cat "$W/err"; exit 1; }
    read -r s k < "$W/t"
    if [ -z "$best" ] || [ "$(echo "$s < $best" | bc)" = 1 ]; then best=$s; fi
    [ "$k" -gt "$rss" ] && rss=$k
  done
  printf '| %-58s | %8s | %8d |\n' "$label" "$best" $((rss / 1024))
  echo "$best" > "$W/last"
}

echo "building a 4 GiB disk: partition 2 = 2 GiB ext4 holding 1 GiB of data" >&2
mkdir -p "$W/tree/data" "$W/small"
python3 - "$W/tree/data" <<'PY'
import os, random, sys
r = random.Random(1)
d = sys.argv[1]
for i in range(16):   # 16 x 64 MiB of incompressible data
    with open(os.path.join(d, f"blob{i:02d}"), "wb") as f:
        f.write(r.randbytes(64 << 20))
PY
mke2fs -q -F -t ext4 -d "$W/tree" "$W/p2.img" 2048M
truncate -s 4096M "$W/disk.raw"
printf 'label: dos\nsize=1000MiB, type=c\nsize=2048MiB, type=83\n' | sfdisk -q "$W/disk.raw"
start=$(sfdisk -d "$W/disk.raw" | awk '/disk.raw2/{gsub(",","",$4); print $4}')
dd if="$W/p2.img" of="$W/disk.raw" bs=512 seek="$start" conv=notrunc,sparse status=none
rm -f "$W/p2.img"
for sub in twoGbMaxExtentFlat twoGbMaxExtentSparse; do
  mkdir -p "$W/$sub"
  qemu-img convert -f raw -O vmdk -o subformat=$sub "$W/disk.raw" "$W/$sub/disk.vmdk"
done
rm -f "$W/disk.raw"

echo "building a 10,000-file tree in an ext4 image" >&2
python3 - "$W/small" <<'PY'
import os, random, sys
r = random.Random(2)
root = sys.argv[1]
for d in range(100):
    p = os.path.join(root, f"dir{d:03d}")
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, f"file{f:03d}"), "wb") as fh:
            fh.write(r.randbytes(r.randint(0, 16384)))
PY
mke2fs -q -F -t ext4 -d "$W/small" "$W/small.img" 512M
rm -rf "$W/small"

echo
echo "| operation (best of $RUNS, caches dropped: $([ "$(id -u)" = 0 ] && echo yes || echo no)) | seconds | peak RSS MiB |"
echo "|---|---:|---:|"
off=$((start * 512)); size=$((2048 << 20))
for sub in twoGbMaxExtentFlat twoGbMaxExtentSparse; do
  measure "vmroot extract -p 2 ($sub)" "$V" extract -p 2 "$W/$sub/disk.vmdk" -o "$W/out/p2.raw"; a=$(cat "$W/last")
  measure "qemu-img convert -O raw, same range ($sub)" qemu-img convert --image-opts \
    "driver=raw,offset=$off,size=$size,file.driver=vmdk,file.file.filename=$W/$sub/disk.vmdk" -O raw "$W/out/p2.raw"; b=$(cat "$W/last")
  printf '| %-58s | %8s | |\n' "ratio qemu-img / vmroot ($sub)" "$(echo "scale=2; $b / $a" | bc)"
done
measure "vmroot cp -r (10,000 files)" "$V" cp -r "$W/small.img" / "$W/out/t"; a=$(cat "$W/last")
measure "debugfs -R 'rdump / DIR' (10,000 files)" debugfs -R "rdump / $W/out" "$W/small.img"; b=$(cat "$W/last")
printf '| %-58s | %8s | |\n' "ratio debugfs / vmroot" "$(echo "scale=2; $b / $a" | bc)"
