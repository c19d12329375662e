package overlay

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func hiddenXattr(name string) bool { return skipXattr(name) }

// GetXattr returns an extended attribute's value.
func (o *FS) GetXattr(n *Node, name string) ([]byte, error) {
	if hiddenXattr(name) {
		return nil, syscall.ENODATA
	}
	o.ns.RLock()
	defer o.ns.RUnlock()
	s := n.state()
	if s.upper {
		p := o.uabs(n.dataPath())
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, sz)
		sz, err = unix.Lgetxattr(p, name, buf)
		if err != nil {
			return nil, err
		}
		return buf[:sz], nil
	}
	if len(s.lowers) == 0 {
		return nil, syscall.ENOENT
	}
	v, err := o.lowers[s.lowers[0].layer].GetXattr(s.lowers[0].ino, name)
	if err != nil {
		return nil, lowerErr(err)
	}
	return v, nil
}

// ListXattr lists the extended attribute names.
func (o *FS) ListXattr(n *Node) ([]string, error) {
	o.ns.RLock()
	defer o.ns.RUnlock()
	s := n.state()
	var names []string
	if s.upper {
		p := o.uabs(n.dataPath())
		sz, err := unix.Llistxattr(p, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, sz)
		sz, err = unix.Llistxattr(p, buf)
		if err != nil {
			return nil, err
		}
		for _, nm := range strings.Split(string(buf[:sz]), "\x00") {
			if nm != "" {
				names = append(names, nm)
			}
		}
	} else if len(s.lowers) > 0 {
		l, err := o.lowers[s.lowers[0].layer].ListXattr(s.lowers[0].ino)
		if err != nil {
			return nil, lowerErr(err)
		}
		names = l
	}
	out := names[:0:0]
	for _, nm := range names {
		if !hiddenXattr(nm) {
			out = append(out, nm)
		}
	}
	return out, nil
}

// SetXattr sets an extended attribute (flags: XATTR_CREATE, XATTR_REPLACE);
// it copies up metadata only.
func (o *FS) SetXattr(n *Node, name string, value []byte, flags int) error {
	if hiddenXattr(name) {
		return syscall.EPERM
	}
	o.ns.Lock()
	defer o.ns.Unlock()
	if err := o.copyUpMeta(n); err != nil {
		return err
	}
	return unix.Lsetxattr(o.uabs(n.dataPath()), name, value, flags)
}

// RemoveXattr removes an extended attribute.
func (o *FS) RemoveXattr(n *Node, name string) error {
	if hiddenXattr(name) {
		return syscall.ENODATA
	}
	o.ns.Lock()
	defer o.ns.Unlock()
	if _, err := o.getXattrLocked(n, name); err != nil {
		return err
	}
	if err := o.copyUpMeta(n); err != nil {
		return err
	}
	return unix.Lremovexattr(o.uabs(n.dataPath()), name)
}

func (o *FS) getXattrLocked(n *Node, name string) ([]byte, error) {
	s := n.state()
	if s.upper {
		_, err := unix.Lgetxattr(o.uabs(n.dataPath()), name, nil)
		return nil, err
	}
	if len(s.lowers) == 0 {
		return nil, syscall.ENOENT
	}
	v, err := o.lowers[s.lowers[0].layer].GetXattr(s.lowers[0].ino, name)
	return v, lowerErr(err)
}
