#!/usr/bin/env bash
# demo.sh VMROOT DEMO_DIR: vmroot's main job on the sample appliance. It
# reads the split VMDK in place, then serves it over NFSv3 on loopback with
# a copy-on-write diff per client address, and shows a client reading the
# base and writing into its own diff while the image stays untouched.
set -euo pipefail
V=$1; D=$2; IMG=$D/appliance.vmdk
step() { printf '\n$ %s\n' "$*"; "$@"; }
step "$V" info "$IMG"
step "$V" ls -l "$IMG" /
step "$V" cat "$IMG" /etc/fstab
printf '\n$ vmroot ls -R %s /etc | head\n' "$IMG"; "$V" ls -R "$IMG" /etc | head

command -v nfs-ls >/dev/null || { echo "(libnfs-utils not installed: skipping the NFS part)"; exit 0; }
sum_before=$(cat "$D"/appliance*.vmdk | sha256sum)
rm -rf "$D/diffs"; mkdir -p "$D/diffs"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '\n$ vmroot serve %s --hosts-dir %s --listen 127.0.0.1 --port %d --portmap-port -1 &\n' "$IMG" "$D/diffs" $port
"$V" serve "$IMG" --hosts-dir "$D/diffs" --listen 127.0.0.1 --port $port --portmap-port -1 2>"$D/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
url() { echo "nfs://127.0.0.1/vmroot$1?version=3&nfsport=$port&mountport=$port&uid=0&gid=0"; }
step nfs-ls "$(url /etc)"
step nfs-cat "$(url /etc/hostname)"
echo "written by this client" > "$D/note.txt"
step nfs-cp "$D/note.txt" "$(url /tmp/note.txt)"
step nfs-cat "$(url /tmp/note.txt)"
kill -TERM $pid; wait $pid || true
trap - EXIT
step "$V" diff list "$D/diffs/127.0.0.1"
printf '\nthe image files are unchanged: '
[ "$(cat "$D"/appliance*.vmdk | sha256sum)" = "$sum_before" ] && echo yes || { echo NO; exit 1; }
