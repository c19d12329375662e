#!/usr/bin/env bash
# bench/nfs.sh [RUNS] — vmroot serve against nfs-ganesha (VFS backend) and
# willscott/go-nfs's osnfs example, all on one tree and all through the
# same libnfs client, side by side in one run. Prints a markdown table of
# the best of RUNS (default 3) times, the ratios peer/vmroot (above 1:
# vmroot is faster), and vmroot's memory per connected host.
#
# vmroot serves an ext4 image of the tree (made with mke2fs -d) with a
# diff per client address; ganesha and go-nfs serve the extracted tree.
# Needs root, mke2fs, libnfs-utils, libnfs-dev, gcc, and installs
# nfs-ganesha, nfs-ganesha-vfs and rpcbind when they are missing.
set -euo pipefail

RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/vmroot-nfsbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/nfs.sh: needs root" >&2; exit 1; }
need_pkgs=()
command -v ganesha.nfsd >/dev/null || need_pkgs+=(nfs-ganesha nfs-ganesha-vfs)
command -v rpcbind >/dev/null || need_pkgs+=(rpcbind)
command -v nfs-ls >/dev/null || need_pkgs+=(libnfs-utils)
[ -e /usr/include/nfsc/libnfs.h ] || need_pkgs+=(libnfs-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	apt-get install -y "${need_pkgs[@]}" >/dev/null
fi

log() { echo "# $*" >&2; }

# --- tools ---------------------------------------------------------------
log "building vmroot, nfs-bench, nfshosts and go-nfs osnfs"
(cd "$ROOT" && go build -o "$W/vmroot" ./cmd/vmroot && go build -o "$W/nfshosts" ./bench/nfshosts)
gcc -O2 -o "$W/nfs-bench" "$ROOT/bench/nfs-bench.c" -lnfs
mkdir -p "$W/gonfs"
GONFS_SRC=$(cd "$ROOT" && go env GOMODCACHE)/github.com/willscott/go-nfs@v0.0.4
(
	cd "$W/gonfs"
	printf 'module gonfsbench\n\ngo 1.22\n\nrequire github.com/willscott/go-nfs v0.0.4\n' > go.mod
	GOFLAGS=-mod=mod go mod download github.com/willscott/go-nfs@v0.0.4
	cp "$GONFS_SRC"/example/osnfs/*.go . && chmod u+w ./*.go
	GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1
	go build -o osnfs .
)

# --- the tree ------------------------------------------------------------
log "making the tree and its ext4 image"
T=$W/tree
mkdir -p "$T/tree20k" "$T/boot" "$T/usr/bin" "$T/w"
head -c 1G /dev/urandom > "$T/big"
for d in $(seq -w 1 20); do
	mkdir "$T/tree20k/d$d"
	(cd "$T/tree20k/d$d" && for i in $(seq -w 1 999); do echo "$d $i" > "f$i"; done)
done
head -c 8M /dev/urandom > "$T/boot/vmlinuz"
head -c 40M /dev/urandom > "$T/boot/initrd.img"
# /usr/bin: this machine's own binaries (regular files only)
find /usr/bin -maxdepth 1 -type f -size -4M -print0 > "$W/bin.list"
head -z -n 600 "$W/bin.list" | xargs -0 cp -t "$T/usr/bin"
for s in vmroot ganesha gonfs; do for r in $(seq 1 "$RUNS"); do mkdir -m 0777 "$T/w/$s-$r"; done; done
BOOTSET=$(cd "$T" && echo boot/vmlinuz boot/initrd.img usr/bin/*)
ENTRIES=$(find "$T/tree20k" | wc -l)
BOOTBYTES=$(cd "$T" && du -cb $BOOTSET | tail -1 | cut -f1)
log "tree: 1 GiB file, $ENTRIES-entry tree, boot set of $(echo $BOOTSET | wc -w) files ($((BOOTBYTES >> 20)) MiB)"
mke2fs -q -F -t ext4 -N 40000 -d "$T" "$W/tree.ext4" 2G

# --- servers -------------------------------------------------------------
VPORT=20490; GPORT=20500; GMPORT=20501; OPORT=20510
"$W/vmroot" serve "$W/tree.ext4" --hosts-dir "$W/hosts" --listen 127.0.0.1 --port $VPORT --portmap-port -1 --no-udp 2> "$W/vmroot.log" &
VPID=$!; PIDS+=($VPID)

. "$ROOT/bench/ganesha.sh"
start_ganesha "$T" $GPORT $GMPORT

(cd "$T" && exec "$W/gonfs/osnfs" "$T" $OPORT > "$W/gonfs.log" 2>&1) &
OPID=$!; PIDS+=($OPID)

url() { # server path
	case $1 in
	vmroot) echo "nfs://127.0.0.1/vmroot/$2?version=3&nfsport=$VPORT&mountport=$VPORT&uid=0&gid=0" ;;
	ganesha) echo "nfs://127.0.0.1/export/$2?version=3&nfsport=$GPORT&mountport=$GMPORT&uid=0&gid=0" ;;
	gonfs) echo "nfs://127.0.0.1/mount/$2?version=3&nfsport=$OPORT&mountport=$OPORT&uid=0&gid=0&auto-traverse-mounts=0" ;;
	esac
}
for s in vmroot ganesha gonfs; do
	for i in $(seq 1 50); do
		nfs-ls "$(url $s "")" >/dev/null 2>&1 && break
		sleep 0.2
	done
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# --- the runs ------------------------------------------------------------
now() { date +%s.%N; }
declare -A BEST
record() { # row server seconds|FAIL
	local k="$1|$2"
	if [ "$3" = FAIL ]; then
		[ -n "${BEST[$k]:-}" ] || BEST[$k]=FAIL
		return
	fi
	if [ -z "${BEST[$k]:-}" ] || [ "${BEST[$k]}" = FAIL ] || awk "BEGIN{exit !($3 < ${BEST[$k]})}"; then
		BEST[$k]=$3
	fi
}
timed() { # row server cmd...
	local row=$1 s=$2; shift 2
	local t0 t1
	t0=$(now)
	if "$@" > "$W/out" 2> "$W/err"; then
		t1=$(now)
		record "$row" "$s" "$(echo "$t1 - $t0" | bc)"
	else
		log "$s: $row failed: $(head -c 300 "$W/err")"
		record "$row" "$s" FAIL
	fi
}
check_ls() { # server
	local n
	n=$(nfs-ls -R "$(url "$1" tree20k)" | wc -l)
	[ "$n" -ge $((ENTRIES - 1)) ] || { echo "nfs-ls -R listed $n of $ENTRIES entries" >&2; return 1; }
}
read_big() { # server
	local n
	n=$(nfs-cat "$(url "$1" big)" | wc -c)
	[ "$n" = $((1 << 30)) ] || { echo "read $n bytes" >&2; return 1; }
}
parallel_read() { # server k
	local pids=() rc=0
	for i in $(seq 1 "$2"); do
		"$W/nfs-bench" readset "$(url "$1" "")" $BOOTSET > "$W/par.$i" 2>&1 & pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	for i in $(seq 1 "$2"); do
		[ "$(head -1 "$W/par.$i")" = "$BOOTBYTES" ] || { echo "client $i: $(head -c 200 "$W/par.$i")" >&2; rc=1; }
	done
	return $rc
}

ROWS=("read 1 GiB file" "nfs-ls -R, $ENTRIES entries" "create 10,000 1 KiB files" "boot set, 1 client" "boot set, 8 clients" "boot set, 32 clients")
for r in $(seq 1 "$RUNS"); do
	log "run $r of $RUNS"
	for s in vmroot ganesha gonfs; do
		timed "${ROWS[0]}" $s read_big $s
		timed "${ROWS[1]}" $s check_ls $s
		timed "${ROWS[2]}" $s "$W/nfs-bench" mkfiles "$(url $s "w/$s-$r")" 10000
		timed "${ROWS[3]}" $s parallel_read $s 1
		timed "${ROWS[4]}" $s parallel_read $s 8
		timed "${ROWS[5]}" $s parallel_read $s 32
	done
done

# --- memory per connected host ---------------------------------------------
# A fresh vmroot on the same image, so that the heap the runs grew does
# not hide what the hosts cost.
log "measuring vmroot memory per connected host"
MPORT=20520
"$W/vmroot" serve "$W/tree.ext4" --hosts-dir "$W/memhosts" --listen 127.0.0.1 --port $MPORT --portmap-port -1 --no-udp 2> "$W/vmroot-mem.log" &
MPID=$!; PIDS+=($MPID)
for i in $(seq 1 50); do
	nfs-ls "nfs://127.0.0.1/vmroot/?version=3&nfsport=$MPORT&mountport=$MPORT" >/dev/null 2>&1 && break
	sleep 0.2
done
sleep 1
IDLE=$(rss $MPID)
coproc HOLD { "$W/nfshosts" -addr 127.0.0.1:$MPORT -n 32 -read boot/vmlinuz; }
read -r ready <&"${HOLD[0]}"
[ "$ready" = ready ] || { log "nfshosts: $ready"; exit 1; }
sleep 1
HELD=$(rss $MPID)
exec {HOLD[1]}>&-
wait "$HOLD_PID" 2>/dev/null || true
RUNRSS=$(rss $VPID)

# --- report --------------------------------------------------------------
echo
echo "| benchmark (best of $RUNS, seconds) | vmroot | nfs-ganesha | go-nfs | ganesha/vmroot | go-nfs/vmroot |"
echo "|---|---:|---:|---:|---:|---:|"
ratio() { if [ "$1" = FAIL ] || [ "$2" = FAIL ]; then echo "-"; else echo "scale=2; $1 / $2" | bc; fi; }
for row in "${ROWS[@]}"; do
	v=${BEST["$row|vmroot"]}; g=${BEST["$row|ganesha"]}; o=${BEST["$row|gonfs"]}
	fmt() { if [ "$1" = FAIL ]; then echo "fails"; else printf '%.3f' "$1"; fi; }
	echo "| $row | $(fmt "$v") | $(fmt "$g") | $(fmt "$o") | $(ratio "$g" "$v") | $(ratio "$o" "$v") |"
done
echo
echo "vmroot RSS: fresh and idle $((IDLE / 1024)) MiB; with 32 hosts connected (each from its own address, mounted, with its own diff, and read boot/vmlinuz) $((HELD / 1024)) MiB: $(( (HELD - IDLE) / 32 )) KiB per host. After the runs above: $((RUNRSS / 1024)) MiB."
echo "ganesha RSS after the runs: $(( $(rss $GPID) / 1024 )) MiB; go-nfs: $(( $(rss $OPID) / 1024 )) MiB."
