# Sourced by the benchmark scripts: start_ganesha DIR PORT MNT_PORT serves
# DIR as /export with nfs-ganesha (VFS backend, NFSv3 over TCP on
# 127.0.0.1), sets GPID, adds it to PIDS and returns once it listens.
# Needs $W (work directory) and the PIDS array.
start_ganesha() {
	local dir=$1 port=$2 mport=$3 rpcb=
	# rpcbind is needed only while ganesha starts.
	if ! pgrep -x rpcbind >/dev/null; then
		rpcbind -f -w & rpcb=$!; PIDS+=($rpcb)
		sleep 0.5
	fi
	cat > "$W/ganesha.conf" <<CONF
NFS_CORE_PARAM { NFS_Port = $port; MNT_Port = $mport; Bind_addr = 127.0.0.1; Protocols = 3; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; Mount_Path_Pseudo = true; }
NFSV4 { Graceless = true; }
EXPORT { Export_Id = 1; Path = $dir; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash; Protocols = 3; Transports = TCP; FSAL { Name = VFS; } }
CONF
	ganesha.nfsd -F -f "$W/ganesha.conf" -L "$W/ganesha.log" -N NIV_EVENT -p "$W/ganesha.pid" &
	GPID=$!; PIDS+=($GPID)
	for _ in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
	sleep 1
	if [ -n "$rpcb" ]; then kill "$rpcb"; fi
}
