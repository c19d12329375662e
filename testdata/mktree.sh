#!/usr/bin/env bash
# mktree.sh DIR — create vmroot's standard test tree in DIR (created if
# missing; must be empty).
#
# Every test that needs "a real tree" builds it with this script, so the
# readers (ext, FAT, ISO, host dir), the overlay and the servers are all
# checked against the same objects. Contents are deterministic (python3
# random.Random with fixed seeds); the tree allocates about 12 MiB and
# takes a second or two to build.
#
# What it makes (paths relative to DIR):
#   files/empty                      0 bytes
#   files/size-1, size-4095, size-4096, size-4097, size-1M+7, size-3M+123
#                                    pseudo-random bytes of that size
#   files/text                       a short text file
#   sparse/hole-start                1 MiB hole, then 4 KiB of data
#   sparse/hole-middle               64 KiB data, 2 MiB hole, 64 KiB data
#   sparse/hole-end                  64 KiB data, then a hole to 3 MiB
#   sparse/all-hole                  8 MiB, no data at all
#   sparse/big-5G                    5 GiB: 4 KiB data at 0, at 4 GiB+1,
#                                    and in the last 4 KiB
#   bigdir/f00000 .. f04999          5,000 entries (every 100th has data)
#   deep/d01/d02/.../d40/leaf        a 40-level path
#   links/fast -> target             fast symlink (target < 60 bytes)
#   links/slow -> 100-byte target    slow symlink (stored in a block)
#   links/long -> 1000-byte target   longest target that still fits a
#                                    1 KiB block (ext's limit is block size - 1)
#   links/dangling -> does/not/exist
#   links/dir -> ../files            symlink to a directory
#   hard/a, hard/sub/b, files/hard-c three names of one inode
#   special/fifo                     a FIFO
#   special/socket                   a Unix socket
#   special/chr-1-3, blk-8-1, chr-300-70000   device nodes (root only)
#   xattr/user                       user.a="1", user.empty="", user.bin=bytes 0..255
#   xattr/trusted                    trusted.t="trusted value" (root only)
#   xattr/security                   security.test="sec" (root only)
#   xattr/acl, xattr/acldir          POSIX access ACL (and default ACL on acldir)
#   xattr/big                        user.big = 900 bytes: spills out of any inode
#                                    into an xattr block, still fits a 1 KiB block
#   modes/setuid, setgid, sticky-dir, mode-000, mode-777, exec
#   owners/u1000, owners/u70000      owned by uid:gid 1000:1000, 70000:70001 (root only)
#   names/"with space", "new<LF>line", "ütf-8 ✓ 日本", 255-byte name, "-dash", ".hidden"
#   times/ns                         mtime 2021-03-04 05:06:07.123456789 UTC
#   times/y2040                      mtime 2040-01-02 03:04:05.5 UTC (needs epoch bits)
#   times/y1960                      mtime 1960-06-07 08:09:10 UTC (negative seconds)
#   times/dir                        directory with mtime 2001-02-03 04:05:06.000000007 UTC
#   emptydir/                        an empty directory
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
D=$1
mkdir -p "$D"
if [ -n "$(ls -A "$D")" ]; then
	echo "mktree.sh: $D is not empty" >&2
	exit 1
fi
cd "$D"
root=0
[ "$(id -u)" = 0 ] && root=1
umask 022

mkdir files sparse bigdir deep links hard hard/sub special xattr modes owners names times emptydir

# Regular files, the 5,000-entry directory and the deep path in one python3
# run (fast and deterministic).
python3 - <<'EOF'
import os, random

def data(seed, n):
    return random.Random(seed).randbytes(n)

for name, n in [("size-1", 1), ("size-4095", 4095), ("size-4096", 4096),
                ("size-4097", 4097), ("size-1M+7", (1 << 20) + 7),
                ("size-3M+123", 3 * (1 << 20) + 123)]:
    with open("files/" + name, "wb") as f:
        f.write(data(n, n))
open("files/empty", "wb").close()
with open("files/text", "w") as f:
    f.write("hello, vmroot\n")

def sparse(path, size, chunks):
    with open(path, "wb") as f:
        for off, n in chunks:
            f.seek(off)
            f.write(data(off + n, n))
        f.truncate(size)

M, G = 1 << 20, 1 << 30
sparse("sparse/hole-start", M + 4096, [(M, 4096)])
sparse("sparse/hole-middle", 2 * M + 128 * 1024, [(0, 65536), (2 * M + 65536, 65536)])
sparse("sparse/hole-end", 3 * M, [(0, 65536)])
sparse("sparse/all-hole", 8 * M, [])
sparse("sparse/big-5G", 5 * G, [(0, 4096), (4 * G + 1, 4096), (5 * G - 4096, 4096)])

for i in range(5000):
    with open("bigdir/f%05d" % i, "wb") as f:
        if i % 100 == 0:
            f.write(data(i, 100 + i))

p = "deep"
for i in range(1, 41):
    p += "/d%02d" % i
os.makedirs(p)
with open(p + "/leaf", "w") as f:
    f.write("bottom\n")
EOF

# Symlinks.
ln -s target links/fast
ln -s "$(printf 'slow/%.0s' $(seq 20))" links/slow   # 100 bytes
ln -s "$(printf 'long-link/%.0s' $(seq 100))" links/long   # 1000 bytes
ln -s does/not/exist links/dangling
ln -s ../files links/dir

# Hard links: one inode, three names in three directories.
printf 'three names\n' >hard/a
ln hard/a hard/sub/b
ln hard/a files/hard-c

# Special files.
mkfifo special/fifo
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("special/socket")'
if [ $root = 1 ]; then
	mknod special/chr-1-3 c 1 3
	mknod special/blk-8-1 b 8 1
	mknod special/chr-300-70000 c 300 70000
fi

# Extended attributes and ACLs.
touch xattr/user xattr/big xattr/acl
mkdir xattr/acldir
setfattr -n user.a -v 1 xattr/user
setfattr -n user.empty xattr/user
setfattr -n user.bin -v "0x$(python3 -c 'print(bytes(range(256)).hex())')" xattr/user
setfattr -n user.big -v "0x$(python3 -c 'import random; print(random.Random(900).randbytes(900).hex())')" xattr/big
setfacl -m u:1000:rw-,g:1000:r--,m::rw- xattr/acl
setfacl -m u:1000:rwx xattr/acldir
setfacl -d -m u:1000:r-x,g::r-x xattr/acldir
if [ $root = 1 ]; then
	touch xattr/trusted xattr/security
	setfattr -n trusted.t -v "trusted value" xattr/trusted
	setfattr -n security.test -v sec xattr/security
fi

# Modes.
for f in setuid setgid mode-000 mode-777 exec; do printf '%s\n' "$f" >modes/$f; done
mkdir modes/sticky-dir
chmod 4755 modes/setuid
chmod 2755 modes/setgid
chmod 1777 modes/sticky-dir
chmod 000 modes/mode-000
chmod 777 modes/mode-777
chmod 755 modes/exec

# Owners (high uid/gid bits need uid > 65535).
echo u1000 >owners/u1000
echo u70000 >owners/u70000
if [ $root = 1 ]; then
	chown 1000:1000 owners/u1000
	chown 70000:70001 owners/u70000
fi

# Awkward names.
echo space >"names/with space"
echo newline >"names/new
line"
echo utf8 >"names/ütf-8 ✓ 日本"
echo 255 >"names/$(printf 'n%.0s' $(seq 255))"
echo dash >names/-dash
echo hidden >names/.hidden

# Times (UTC so the result does not depend on the host's zone).
echo ns >times/ns
echo y2040 >times/y2040
echo y1960 >times/y1960
mkdir times/dir
TZ=UTC touch -d '2021-03-04 05:06:07.123456789' times/ns
TZ=UTC touch -d '2040-01-02 03:04:05.5' times/y2040
TZ=UTC touch -d '1960-06-07 08:09:10' times/y1960
TZ=UTC touch -d '2001-02-03 04:05:06.000000007' times/dir
TZ=UTC touch -h -d '2022-02-02 02:02:02.2' links/fast
