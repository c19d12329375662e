package overlay

import (
	"os"

	"github.com/vmroot/vmroot/internal/fsys"
)

// HostFile says where bytes [off, off+n) of a file that is only in the
// layers lie in a host file (see fsys.HostFiler), so a server can send
// them without reading them; ok is false for anything else.
func (o *FS) HostFile(n *Node, off int64, count int) (f *os.File, hostOff int64, ok bool) {
	s := n.state()
	if n.mode != fsys.S_IFREG || s.upper || len(s.lowers) == 0 {
		return nil, 0, false
	}
	l := s.lowers[0]
	hf, ok := o.lowers[l.layer].(fsys.HostFiler)
	if !ok {
		return nil, 0, false
	}
	return hf.HostFile(l.ino, off, count)
}
