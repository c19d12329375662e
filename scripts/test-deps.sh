#!/usr/bin/env bash
# Installs the Debian packages vmroot's tests and demo use, when run as root
# and they are missing; otherwise lists what is missing (tests needing them skip).
set -euo pipefail
pkgs=(
  e2fsprogs fdisk gdisk qemu-utils xorriso python3-vmdkstream mtools dosfstools
  attr acl fuse3 libnfs-utils libnfs-dev rpcbind cpio curl gcc
  qemu-system-x86 seabios ipxe-qemu busybox-static pxelinux syslinux-common isolinux
  binutils time iproute2 tftp-hpa bc debootstrap
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "not root: tests that need these packages will skip: ${missing[*]}" >&2
fi
