#!/bin/bash
# Benchmark: `vmroot installer` against the same steps done by hand with
# xorriso extraction + sgdisk + mkfs.vfat + mtools + qemu-img.
#
# Builds a ~400 MB ESXi-like ISO from generated files, then times both
# pipelines producing a raw disk, a VMDK and a qcow2 image of the same size,
# and prints a markdown table (median of RUNS runs).
#
#   bench/installer.sh [WORKDIR]      (RUNS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
if [ -n "${1:-}" ]; then WORK=$1; else WORK=$(mktemp -d /var/tmp/vmroot-bench-installer.XXXXXX); trap 'rm -rf "$WORK"' EXIT; fi
RUNS=${RUNS:-3}
mkdir -p "$WORK"
CD="$REPO/testdata/installer/configdrive"

for t in xorriso sgdisk mkfs.vfat mcopy qemu-img; do
	command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }
done

go build -o "$WORK/vmroot" ./cmd/vmroot

# The ISO: a few large modules (like ESXi's VIBs), many small ones, the
# boot configuration and an EFI loader placeholder.
ISO="$WORK/esxi.iso"
if [ ! -f "$ISO" ]; then
	T="$WORK/tree"
	rm -rf "$T"; mkdir -p "$T/EFI/BOOT" "$T/UPGRADE"
	mods=""
	for i in $(seq -w 0 29); do
		head -c $((12 * 1024 * 1024)) /dev/urandom > "$T/M$i.V00"
		mods="$mods --- /m$i.v00"
	done
	for i in $(seq -w 0 199); do
		head -c $((100 * 1024)) /dev/urandom > "$T/S$i.V00"
	done
	head -c $((20 * 1024 * 1024)) /dev/urandom > "$T/S.V00"
	head -c 300000 /dev/urandom > "$T/B.B00"
	head -c 150000 /dev/urandom > "$T/EFI/BOOT/BOOTX64.EFI"
	echo '<profile/>' > "$T/UPGRADE/PROFILE.XML"
	printf 'bootstate=0\ntitle=Loading ESXi installer\nkernel=/b.b00\nkernelopt=runweasel cdromBoot\nmodules=/b.b00 --- /s.v00%s\n' "$mods" > "$T/BOOT.CFG"
	cp "$T/BOOT.CFG" "$T/EFI/BOOT/BOOT.CFG"
	xorriso -as mkisofs -quiet -R -J -V ESXI -o "$ISO" "$T" 2>/dev/null
	rm -rf "$T"
fi
ISO_MB=$(( $(stat -c %s "$ISO") / 1024 / 1024 ))

vmroot_run() { # FORMAT OUT
	"$WORK/vmroot" installer "$ISO" -o "$2" --format "$1" --config-drive "$CD"
}

# The manual pipeline does the same work: extract, edit both BOOT.CFG,
# build the module, partition, format, copy, convert.
manual_run() { # FORMAT OUT SIZE
	local x="$WORK/manual" raw="$WORK/manual.raw"
	rm -rf "$x" "$raw"; mkdir -p "$x/mod/vmroot"
	xorriso -osirrox on -indev "$ISO" -extract / "$x/iso" 2>/dev/null
	chmod -R u+w "$x/iso"
	cp "$x/iso/BOOT.CFG" "$x/mod/vmroot/KS.CFG" # stands in for rendering the kickstart
	tar --format=gnu --owner=0 --group=0 -C "$x/mod" -czf "$x/iso/vmroot.tgz" vmroot
	for c in "$x/iso/BOOT.CFG" "$x/iso/EFI/BOOT/BOOT.CFG"; do
		sed -i -e '/^modules=/s|$| --- /vmroot.tgz|' -e '/^kernelopt=/s|$| ks=file:///vmroot/KS.CFG|' "$c"
	done
	truncate -s "$3" "$raw"
	sgdisk -q -n 1:2048:$(( $3 / 512 - 2049 )) -t 1:EF00 "$raw" >/dev/null
	mkfs.vfat -F 32 -h 2048 -n ESXI --offset 2048 "$raw" $(( ($3 / 512 - 4096) / 2 )) >/dev/null 2>&1
	mcopy -s -i "$raw@@1M" "$x/iso/"* ::/
	if [ "$1" = raw ]; then mv "$raw" "$2"; else qemu-img convert -O "$1" "$raw" "$2"; rm -f "$raw"; fi
	rm -rf "$x"
}

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One vmroot run sizes the disk; the manual pipeline gets the same size.
vmroot_run raw "$WORK/size.raw"
SIZE=$(stat -c %s "$WORK/size.raw"); rm -f "$WORK/size.raw"

declare -A T
for fmt in raw vmdk qcow2; do
	for who in vmroot manual; do
		for r in $(seq "$RUNS"); do
			out="$WORK/out-$who.$fmt"; rm -f "$out"
			sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
			cat "$ISO" > /dev/null # warm: both read the ISO from the page cache
			s=$(now)
			if [ $who = vmroot ]; then vmroot_run $fmt "$out"; else manual_run $fmt "$out" "$SIZE"; fi
			e=$(now)
			echo "$e - $s" | bc >> "$WORK/runs-$who-$fmt"
		done
		median < "$WORK/runs-$who-$fmt" > "$WORK/t-$who-$fmt"; rm -f "$WORK/runs-$who-$fmt"
		T[$who-$fmt]=$(cat "$WORK/t-$who-$fmt")
	done
done

echo
echo "Installer disk from a ${ISO_MB} MB ISO, $((SIZE / 1024 / 1024)) MiB disk, median of $RUNS runs ($(nproc) cores):"
echo
echo "| output | vmroot installer (s) | xorriso + sgdisk + mkfs.vfat + mtools (+ qemu-img) (s) | ratio |"
echo "|---|---|---|---|"
for fmt in raw vmdk qcow2; do
	printf '| %s | %.2f | %.2f | %.1fx |\n' $fmt "${T[vmroot-$fmt]}" "${T[manual-$fmt]}" "$(echo "${T[manual-$fmt]} / ${T[vmroot-$fmt]}" | bc -l)"
done
