package fs

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/overlay"
)

func needFuse(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a FUSE mount with allow_other and mknod")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

type testMount struct {
	dir, diff string
	lowers    []fsys.FS
	o         *overlay.FS
	unmount   func()
}

// mountDirs mounts a union of diff (may be "") over host directories
// lowerDirs (top to bottom).
func mountDirs(t testing.TB, diff string, lowerDirs ...string) *testMount {
	t.Helper()
	needFuse(t)
	var lowers []fsys.FS
	for _, d := range lowerDirs {
		l, err := dirfs.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	return mountFS(t, diff, lowers...)
}

func mountFS(t testing.TB, diff string, lowers ...fsys.FS) *testMount {
	t.Helper()
	needFuse(t)
	o, err := overlay.New(overlay.Config{Diff: diff, Lowers: lowers})
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	srv, err := Mount(mnt, o, Options{EntryTimeout: time.Second, AttrTimeout: time.Second, AllowOther: true, DefaultPermissions: true})
	if err != nil {
		t.Fatal(err)
	}
	done := false
	m := &testMount{dir: mnt, diff: diff, lowers: lowers, o: o}
	m.unmount = func() {
		if done {
			return
		}
		done = true
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
		o.Close()
	}
	t.Cleanup(m.unmount)
	return m
}

func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(root, n)
		if n[len(n)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[n]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPosixReadWrite(t *testing.T) {
	needFuse(t)
	for name, fn := range posixtest.All {
		if name == "FcntlFlockLocksFile" {
			// Expects two descriptors of one process to conflict; native
			// ext4 says no too (POSIX locks belong to the process), and so
			// does vmroot, which leaves locks to the kernel.
			continue
		}
		t.Run(name, func(t *testing.T) {
			lower := t.TempDir()
			writeTree(t, lower, map[string]string{"base/file": "lower data", "base/dir/": ""})
			m := mountDirs(t, t.TempDir(), lower)
			fn(t, filepath.Join(m.dir, "base/dir"))
		})
	}
}
