#!/usr/bin/env bash
# mkappliance.sh OUTDIR [SIZE_MIB]
# Builds a sample VMware appliance disk the way the field ships them: an MBR
# disk whose one Linux partition holds an ext3 root filesystem with a few
# hundred files, converted by qemu-img to a twoGbMaxExtentFlat split VMDK
# (OUTDIR/appliance.vmdk + appliance-f001.vmdk ...). Needs mke2fs
# (e2fsprogs), sfdisk (fdisk) and qemu-img (qemu-utils); no root.
set -euo pipefail
out=${1:?usage: mkappliance.sh OUTDIR [SIZE_MIB]}
size_mib=${2:-4200}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root

# A small Debian-like root: config files, binaries, a kernel and initrd, logs.
mkdir -p "$root"/{bin,boot,dev,etc/init.d,etc/network,home/admin,lib/modules,proc,root,sbin,sys,tmp,usr/bin,usr/lib,usr/share/doc,var/log,var/lib/appliance}
chmod 1777 "$root/tmp"
echo appliance > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tappliance\n' > "$root/etc/hosts"
printf 'proc /proc proc defaults 0 0\n/dev/sda1 / ext3 defaults,errors=remount-ro 0 1\n/dev/sda5 none swap sw 0 0\n' > "$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet dhcp\n' > "$root/etc/network/interfaces"
printf 'root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000:Admin:/home/admin:/bin/sh\n' > "$root/etc/passwd"
printf 'root:*:19000:0:99999:7:::\nadmin:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
chmod 0640 "$root/etc/shadow"
echo "Welcome to the sample appliance." > "$root/etc/motd"
for i in $(seq -w 1 120); do
  printf '#!/bin/sh\n# tool %s\necho tool-%s\n' "$i" "$i" > "$root/usr/bin/tool$i"
  chmod 0755 "$root/usr/bin/tool$i"
done
for i in $(seq -w 1 60); do
  printf '#!/bin/sh\n### BEGIN INIT INFO\n# Provides: svc%s\n### END INIT INFO\n' "$i" > "$root/etc/init.d/svc$i"
  chmod 0755 "$root/etc/init.d/svc$i"
done
for i in $(seq -w 1 80); do
  mkdir -p "$root/usr/share/doc/pkg$i"
  printf 'Package pkg%s\nCopyright: sample\n' "$i" > "$root/usr/share/doc/pkg$i/copyright"
done
head -c 3000000 /dev/zero | tr '\0' 'K' > "$root/boot/vmlinuz-6.1.0-sample"
head -c 1500000 /dev/zero | tr '\0' 'I' > "$root/boot/initrd.img-6.1.0-sample"
ln -s boot/vmlinuz-6.1.0-sample "$root/vmlinuz"
ln -s boot/initrd.img-6.1.0-sample "$root/initrd.img"
ln -s /usr/bin/tool001 "$root/bin/tool"
cp "$root/usr/bin/tool002" "$root/sbin/tool002"
ln "$root/usr/bin/tool003" "$root/sbin/tool003-hardlink"
for i in $(seq 1 20); do echo "log line $i" >> "$root/var/log/syslog"; done
truncate -s 64M "$root/var/lib/appliance/sparse.db"
printf 'data' | dd of="$root/var/lib/appliance/sparse.db" bs=1 seek=$((32<<20)) conv=notrunc status=none

# Partition 1: the ext3 root, starting at 1 MiB; the rest of the disk is free.
part_mib=$((size_mib - 2))
truncate -s "${size_mib}M" "$work/disk.raw"
printf 'label: dos\nlabel-id: 0x0a11ce00\nstart=2048, size=%d, type=83, bootable\n' $((part_mib * 2048)) |
  sfdisk -q "$work/disk.raw"
# mke2fs writes the filesystem straight into the partition.
mke2fs -q -F -t ext3 -L approot -E offset=1048576 -d "$root" "$work/disk.raw" "${part_mib}M"
rm -f "$out"/appliance*.vmdk
qemu-img convert -f raw -O vmdk -o subformat=twoGbMaxExtentFlat "$work/disk.raw" "$out/appliance.vmdk"
ls -l "$out"/appliance*.vmdk
