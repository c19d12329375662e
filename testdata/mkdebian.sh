#!/usr/bin/env bash
# mkdebian.sh OUTDIR [SIZE_MIB]
# Builds a real Debian appliance for the netboot end-to-end tests and
# benchmark: a debootstrap --variant=minbase bookworm root with systemd as
# init, the Debian kernel and a small busybox initramfs that mounts the root
# named by nfsroot=, packed by mke2fs into an ext3 partition of an MBR disk
# converted to a twoGbMaxExtentFlat split VMDK.
#
# Outputs in OUTDIR: debian.vmdk + debian-f00N.vmdk, root.tar (the finished
# tree, for peers that serve a directory) and usr.sha256 (the checksum walk
# of /usr the guest repeats at boot).
#
# At boot the root's vmroot-mark.service appends to /root/written-by-ID (ID:
# the guest's address), prints "NFSROOT-SEEN ID" when an earlier boot left
# that file, prints "NFSROOT-OK id=ID usr=SHA" on the console and powers
# off. SHA is the checksum walk of /usr when the kernel command line has
# vmroot_usrsum=1, else "skipped".
#
# Needs root, debootstrap, busybox-static, dpkg, e2fsprogs, fdisk,
# qemu-utils. The debootstrap result and the kernel package are cached in
# $CACHE (default /var/cache/vmroot-netboot).
set -euo pipefail
out=${1:?usage: mkdebian.sh OUTDIR [SIZE_MIB]}
size_mib=${2:-2200} # > 2 GiB: two extent files
cache=${CACHE:-/var/cache/vmroot-netboot}
mirror=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The cache is shared with the Go tests (netboottest.LockCache), which may
# run at the same time.
exec 9>"$cache/.lock"
flock 9

# 1. The minbase root, once per machine (about 30 s).
tarball=$cache/debian-bookworm-minbase-systemd.tar
if [ ! -f "$tarball" ]; then
  debootstrap --variant=minbase --include=systemd-sysv bookworm "$work/ds" "$mirror" >"$work/ds.log" 2>&1 ||
    { tail -n 30 "$work/ds.log"; exit 1; }
  tar -C "$work/ds" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work/ds"
fi

# 2. The Debian kernel package (modules only unpacked, never installed).
deb=$(ls "$cache"/linux-image-*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
  (cd "$cache" && apt-get download "$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')") >/dev/null
  deb=$(ls "$cache"/linux-image-*.deb | head -n 1)
fi
flock -u 9
K=$work/kroot
dpkg -x "$deb" "$K"
kv=$(basename "$(ls "$K"/boot/vmlinuz-*)"); kv=${kv#vmlinuz-}
M=$K/lib/modules/$kv
[ -f "$M/modules.dep" ] || busybox depmod -b "$K" "$kv"

R=$work/root
mkdir "$R"
tar -C "$R" --numeric-owner -xpf "$tarball"
echo debian-nfsroot > "$R/etc/hostname"
# Slim like Debian's container images (docs, manuals, translations): the
# guest reads all of /usr at every boot, slowly under TCG.
rm -rf "$R"/usr/share/{doc,man,info,locale}/*
# minbase has no udev: the serial getty would wait 90 s for its device.
ln -sf /dev/null "$R/etc/systemd/system/serial-getty@ttyS0.service"
cat > "$R/usr/local/sbin/vmroot-mark" <<'EOF'
#!/bin/sh
# The guest's first non-loopback address names its file: with one image,
# the file is the only per-host difference.
id=$(awk '/32 host/ && f != "127.0.0.1" {print f; exit} {f = $2}' /proc/net/fib_trie)
[ -n "$id" ] || id=$(cat /etc/hostname)
[ -f "/root/written-by-$id" ] && echo "NFSROOT-SEEN $id" > /dev/console
echo "boot of $id" >> "/root/written-by-$id" || echo "NFSROOT-WRITE-FAILED" > /dev/console
sync
# The walk reads all of /usr (minutes under a busy TCG): only when asked.
usr=skipped
if grep -qw vmroot_usrsum=1 /proc/cmdline; then
  usr=$(cd / && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
fi
echo "NFSROOT-OK id=$id usr=$usr uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
sync
# Straight off: the write is flushed and nothing else needs stopping.
systemctl poweroff --force --force
EOF
chmod 755 "$R/usr/local/sbin/vmroot-mark"
cat > "$R/etc/systemd/system/vmroot-mark.service" <<'EOF'
[Unit]
Description=vmroot netboot marker: write a per-host file, check /usr, power off
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vmroot-mark

[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/vmroot-mark.service "$R/etc/systemd/system/multi-user.target.wants/vmroot-mark.service"

# 3. Kernel and a busybox initramfs (minbase has no initramfs-tools):
# load virtio_net and nfsv3, take a DHCP lease, mount nfsroot=, switch_root.
I=$work/initrd
mkdir -p "$I"/{bin,proc,sys,dev,run,newroot,usr/share/udhcpc,lib/modules/$kv}
cp /bin/busybox "$I/bin/"
for a in sh mount umount modprobe ip udhcpc cat poweroff switch_root sleep; do ln -s busybox "$I/bin/$a"; done
for f in $(for m in virtio_pci virtio_net nfsv3; do grep -E "/$m\.ko[^:]*:" "$M/modules.dep" | tr -d ':'; done | tr ' ' '\n' | sort -u); do
  mkdir -p "$I/lib/modules/$kv/$(dirname "$f")"; cp "$M/$f" "$I/lib/modules/$kv/$f"
done
busybox depmod -b "$I" "$kv"
cat > "$I/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"
for r in $router; do ip route add default via "$r" dev "$interface"; break; done
exit 0
EOF
cat > "$I/init" <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
fail() { echo "INITRAMFS: $*"; sleep 1; poweroff -f; }
NFSROOT=
for x in $(cat /proc/cmdline); do case "$x" in nfsroot=*) NFSROOT="${x#nfsroot=}";; esac; done
[ -n "$NFSROOT" ] || fail "no nfsroot= on the command line"
modprobe virtio_pci 2>/dev/null; modprobe virtio_net; modprobe nfsv3
ip link set lo up; ip link set eth0 up
udhcpc -i eth0 -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script || fail "dhcp failed"
# nfsroot=SERVER:/PATH[,OPTS]: busybox mount passes OPTS to the kernel,
# which needs addr= and, with no lock manager to ask, nolock.
SRV_PATH="${NFSROOT%%,*}"; OPTS=
case "$NFSROOT" in *,*) OPTS="${NFSROOT#*,}";; esac
SRV="${SRV_PATH%%:*}"
PORT= MP= LK= VERS=
IFS=,; for o in $OPTS; do case "$o" in port=*) PORT="${o#port=}";; mountport=*) MP=1;; lock|nolock) LK=1;; vers=*|nfsvers=*) VERS=1;; esac; done; unset IFS
[ -n "$VERS" ] || OPTS="$OPTS,vers=3"
[ -n "$LK" ] || OPTS="$OPTS,nolock"
# A server on a fixed port without a portmapper serves MOUNT there too.
[ -z "$PORT" ] || [ -n "$MP" ] || OPTS="$OPTS,mountport=$PORT"
OPTS="${OPTS#,},addr=$SRV"
echo "INITRAMFS: mount -t nfs -o $OPTS $SRV_PATH"
mount -t nfs -o "$OPTS" "$SRV_PATH" /newroot || fail "nfs mount failed"
mount --move /dev /newroot/dev; umount /sys /proc
exec switch_root /newroot /sbin/init
EOF
chmod 755 "$I/init" "$I/usr/share/udhcpc/default.script"
cp "$K/boot/vmlinuz-$kv" "$R/boot/"
(cd "$I" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$R/boot/initrd.img-$kv"
ln -sf "boot/vmlinuz-$kv" "$R/vmlinuz"
ln -sf "boot/initrd.img-$kv" "$R/initrd.img"

# 4. Host-side /usr checksum, the tree for directory-serving peers, and
# the disk: MBR, ext3 partition from 1 MiB, split VMDK.
(cd "$R" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1) > "$out/usr.sha256"
tar -C "$R" --numeric-owner -cf "$out/root.tar" .
part_mib=$((size_mib - 2))
truncate -s "${size_mib}M" "$work/disk.raw"
printf 'label: dos\nlabel-id: 0x0de61a00\nstart=2048, size=%d, type=83, bootable\n' $((part_mib * 2048)) |
  sfdisk -q "$work/disk.raw"
mke2fs -q -F -t ext3 -L debroot -E offset=1048576 -d "$R" "$work/disk.raw" "${part_mib}M"
rm -f "$out"/debian*.vmdk
qemu-img convert -f raw -O vmdk -o subformat=twoGbMaxExtentFlat "$work/disk.raw" "$out/debian.vmdk"
ls -l "$out"/debian*.vmdk
