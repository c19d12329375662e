#!/usr/bin/env bash
# bench/netboot.sh [RUNS [WALK_RUNS]] — boot time of a real Debian root (minbase,
# systemd as init; testdata/mkdebian.sh) over NFSv3, served by vmroot from
# the split VMDK and by nfs-ganesha (VFS backend) from the same tree
# extracted to a directory, side by side in one run. Each run is one qemu
# TCG guest (-kernel/-initrd from the image, user networking with
# restrict=on, guestfwd through tcpfwd to the server's loopback port:
# busybox nc there caps reads below 1 MB/s); the time is from
# qemu start to the guest's marker line, printed by a systemd unit once the
# guest has written a file to its root; in the second row the guest first
# checksums all of /usr over NFS (vmroot_usrsum=1). Prints best and median
# of RUNS (default 3; WALK_RUNS for the second row, default RUNS) and the
# ratio ganesha/vmroot (above 1: vmroot is faster). Needs root and what mkdebian.sh needs; installs
# nfs-ganesha, nfs-ganesha-vfs and rpcbind when missing.
set -euo pipefail

RUNS=${1:-3}
WALK_RUNS=${2:-$RUNS}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/vmroot-netbootbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/netboot.sh: needs root" >&2; exit 1; }
need_pkgs=()
command -v ganesha.nfsd >/dev/null || need_pkgs+=(nfs-ganesha nfs-ganesha-vfs)
command -v rpcbind >/dev/null || need_pkgs+=(rpcbind)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
log() { echo "# $*" >&2; }

log "building vmroot and the Debian image"
(cd "$ROOT" && go build -o "$W/vmroot" ./cmd/vmroot && go build -o "$W/tcpfwd" ./internal/netboot/netboottest/tcpfwd)
"$ROOT/testdata/mkdebian.sh" "$W/img" > "$W/mkdebian.log" 2>&1 || { cat "$W/mkdebian.log"; exit 1; }
VMDK=$W/img/debian.vmdk
"$W/vmroot" cat "$VMDK" /vmlinuz > "$W/vmlinuz"
"$W/vmroot" cat "$VMDK" /initrd.img > "$W/initrd.img"
USR=$(cat "$W/img/usr.sha256")
T=$W/tree
mkdir "$T"
tar -C "$T" --numeric-owner -xpf "$W/img/root.tar"

VPORT=20590; GPORT=20600; GMPORT=20601

. "$ROOT/bench/ganesha.sh"
start_ganesha "$T" $GPORT $GMPORT

# vmroot: a fresh server and diff per run, so every run is a first boot.
start_vmroot() { # run
	cat > "$W/vmroot-$1.toml" <<EOF
image = "$VMDK"
export = "/vmroot"
state_dir = "$W/state-$1"
[nfs]
listen = ["127.0.0.1"]
port = $VPORT
portmap_port = -1
udp = false
[[host]]
name = "bench"
ip = ["127.0.0.1"]
diff = "$W/diff-$1"
squash = "no_root_squash"
EOF
	"$W/vmroot" serve --config "$W/vmroot-$1.toml" 2> "$W/vmroot-$1.log" &
	VPID=$!; PIDS+=($VPID)
	for i in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$VPORT) 2>/dev/null && break; sleep 0.1; done
}

now() { date +%s.%N; }
boot() { # server walk(0|1) -> prints seconds to the marker line, or FAIL
	local s=$1 walk=$2 nfsroot net want=skipped
	[ "$walk" = 0 ] || want=$USR
	case $s in
	vmroot)
		nfsroot="10.0.2.100:/vmroot,vers=3,tcp,port=2049,mountport=2049"
		net="user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:2049-cmd:$W/tcpfwd 127.0.0.1:$VPORT" ;;
	ganesha)
		rm -f "$T"/root/written-by-* # every run a first boot here too
		nfsroot="10.0.2.100:/export,vers=3,tcp,port=2049,mountport=2050"
		net="user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:2049-cmd:$W/tcpfwd 127.0.0.1:$GPORT,guestfwd=tcp:10.0.2.100:2050-cmd:$W/tcpfwd 127.0.0.1:$GMPORT" ;;
	esac
	: > "$W/console"
	local t0 t1= qp
	t0=$(now)
	timeout 300 qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot \
		-kernel "$W/vmlinuz" -initrd "$W/initrd.img" \
		-append "console=ttyS0 panic=-1 vmroot_usrsum=$walk root=/dev/nfs nfsroot=$nfsroot ip=dhcp rw" \
		-netdev "$net" -device virtio-net-pci,netdev=n0 < /dev/null > "$W/console" 2>&1 &
	qp=$!
	while kill -0 $qp 2>/dev/null; do
		if grep -aq NFSROOT-OK "$W/console"; then t1=$(now); break; fi
		sleep 0.05
	done
	wait $qp || true
	if [ -z "$t1" ] && grep -aq NFSROOT-OK "$W/console"; then t1=$(now); fi
	if [ -n "$t1" ] && grep -aq "usr=$want " "$W/console"; then
		echo "$t1 - $t0" | bc
	else
		log "$s: no marker with usr=$want; console tail:"
		tail -n 20 "$W/console" >&2
		echo FAIL
	fi
}

declare -A TIMES
n=0
for walk in 0 1; do
	runs=$RUNS; [ $walk = 0 ] || runs=$WALK_RUNS
	for r in $(seq 1 "$runs"); do
		n=$((n + 1))
		start_vmroot "$n"
		TIMES[vmroot$walk]+="$(boot vmroot $walk) "
		kill "$VPID"; wait "$VPID" 2>/dev/null || true
		TIMES[ganesha$walk]+="$(boot ganesha $walk) "
		log "walk=$walk run $r: vmroot ${TIMES[vmroot$walk]}| ganesha ${TIMES[ganesha$walk]}"
	done
done

stats() { # times... -> "best median" (FAIL if any run failed)
	case " $* " in *FAIL*) echo "FAIL FAIL"; return;; esac
	printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f %.2f\n", a[1], m}'
}
ratio() { if [ "$1" = FAIL ] || [ "$2" = FAIL ]; then echo "-"; else printf "%.2f" "$(echo "scale=3; $1 / $2" | bc)"; fi; }
echo
echo "| Debian minbase+systemd nfsroot boot, qemu start to marker (s) | runs | vmroot best | vmroot median | ganesha best | ganesha median | ganesha/vmroot best | ganesha/vmroot median |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for walk in 0 1; do
	runs=$RUNS; [ $walk = 0 ] || runs=$WALK_RUNS
	[ "$runs" -gt 0 ] || continue
	read -r VB VM <<< "$(stats ${TIMES[vmroot$walk]})"
	read -r GB GM <<< "$(stats ${TIMES[ganesha$walk]})"
	row="boot, write, marker"; [ $walk = 0 ] || row="boot, write, sha256 walk of /usr, marker"
	echo "| $row | $runs | $VB | $VM | $GB | $GM | $(ratio "$GB" "$VB") | $(ratio "$GM" "$VM") |"
done
echo
echo "vmroot serves the split VMDK with a fresh per-host diff each run; ganesha (VFS) the same tree extracted to a directory."
