package qcow2

// On-disk layout.
const (
	clusterBits  = 16
	cluster      = 1 << clusterBits
	l2Entries    = cluster / 8
	copied       = uint64(1) << 63 // refcount is exactly 1
	refsPerBlock = cluster / 2     // 16-bit refcounts
	headerLen    = 104
)
