package server

import (
	"context"
	"errors"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/rpc"
)

// mountHandler answers MOUNT v3.
type mountHandler struct{ s *Server }

func (m *mountHandler) Mnt(ctx context.Context, c *rpc.Call, p string) mount.MntRes {
	s := m.s
	addr := c.Peer.Addr().Unmap()
	clean := path.Clean("/" + p)
	rel, ok := strings.CutPrefix(clean, s.export)
	if !ok || (rel != "" && rel[0] != '/' && s.export != "/") {
		s.log.Info("mount refused: no such export", "host", addr.String(), "path", p)
		return mount.MntRes{Status: mount.ErrNoEnt}
	}
	st, _, err := s.host(addr, true)
	if err != nil {
		s.log.Error("mount failed", "host", addr.String(), "err", err)
		return mount.MntRes{Status: mount.ErrServerFault}
	}
	if st == nil {
		s.log.Warn("mount refused: unknown host", "host", addr.String(), "path", p)
		return mount.MntRes{Status: mount.ErrAcces}
	}
	// Like knfsd, a directory below the export may be mounted too.
	n := st.fs.Root()
	for _, name := range strings.Split(rel, "/") {
		if name == "" {
			continue
		}
		if n, err = st.fs.Lookup(n, name); err != nil {
			st.log.Info("mount refused", "path", p, "err", err)
			if errors.Is(err, syscall.ENOTDIR) {
				return mount.MntRes{Status: mount.ErrNotDir}
			}
			return mount.MntRes{Status: mount.ErrNoEnt}
		}
	}
	if !n.IsDir() {
		return mount.MntRes{Status: mount.ErrNotDir}
	}
	id, err := st.fs.ID(n)
	if err != nil {
		st.log.Error("mount: root handle", "err", err)
		return mount.MntRes{Status: mount.ErrServerFault}
	}
	s.mu.Lock()
	s.mounts[mountKey{addr, clean}] = time.Now()
	s.mu.Unlock()
	st.log.Info("mounted", "addr", addr.String(), "path", p, "uid", c.Cred.UID)
	return mount.MntRes{Status: mount.OK, FH: st.makeFH(id), AuthFlavors: []rpc.Flavor{rpc.AuthSys}}
}

func (m *mountHandler) Dump(ctx context.Context, c *rpc.Call) mount.MountList {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var l mount.MountList
	for k := range s.mounts {
		l = append(l, mount.MountEntry{Hostname: k.addr.String(), Directory: k.path})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Hostname < l[j].Hostname })
	return l
}

func (m *mountHandler) Umnt(ctx context.Context, c *rpc.Call, p string) {
	s := m.s
	addr := c.Peer.Addr().Unmap()
	s.mu.Lock()
	delete(s.mounts, mountKey{addr, path.Clean("/" + p)})
	s.mu.Unlock()
	s.log.Info("unmounted", "host", addr.String(), "path", p)
}

func (m *mountHandler) UmntAll(ctx context.Context, c *rpc.Call) {
	s := m.s
	addr := c.Peer.Addr().Unmap()
	s.mu.Lock()
	for k := range s.mounts {
		if k.addr == addr {
			delete(s.mounts, k)
		}
	}
	s.mu.Unlock()
	s.log.Info("unmounted all", "host", addr.String())
}

func (m *mountHandler) Export(ctx context.Context, c *rpc.Call) mount.ExportList {
	t := m.s.table.Load()
	var groups []string
	if t.unknown.Dir != "" {
		groups = []string{"*"}
	} else {
		for _, h := range t.hosts {
			for _, a := range h.Addrs {
				groups = append(groups, a.String())
			}
		}
	}
	return mount.ExportList{{Dir: m.s.export, Groups: groups}}
}
