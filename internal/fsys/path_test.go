package fsys

import "testing"

func TestModeString(t *testing.T) {
	for mode, want := range map[uint32]string{
		S_IFDIR | 0o755:  "drwxr-xr-x",
		S_IFREG | 0o4755: "-rwsr-xr-x",
		S_IFREG | 0o2644: "-rw-r-Sr--",
		S_IFDIR | 0o1777: "drwxrwxrwt",
		S_IFDIR | 0o1770: "drwxrwx--T",
		S_IFLNK | 0o777:  "lrwxrwxrwx",
		S_IFCHR | 0o620:  "crw--w----",
		S_IFBLK | 0o660:  "brw-rw----",
		S_IFIFO | 0o644:  "prw-r--r--",
		S_IFSOCK | 0o755: "srwxr-xr-x",
		S_IFREG:          "----------",
	} {
		if got := ModeString(mode); got != want {
			t.Errorf("ModeString(%o) = %s, want %s", mode, got, want)
		}
	}
}

func TestDeviceNumbers(t *testing.T) {
	// Values as glibc's makedev computes them.
	for _, c := range []struct {
		major, minor uint32
		dev          uint64
	}{{1, 3, 0x103}, {8, 1, 0x801}, {300, 70000, 0x11112c70}, {4095, 255, 0xfffff}, {4096, 256, 0x100000100000}} {
		if got := Mkdev(c.major, c.minor); got != c.dev {
			t.Errorf("Mkdev(%d, %d) = %#x, want %#x", c.major, c.minor, got, c.dev)
		}
		if Major(c.dev) != c.major || Minor(c.dev) != c.minor {
			t.Errorf("Major/Minor(%#x) = %d, %d, want %d, %d", c.dev, Major(c.dev), Minor(c.dev), c.major, c.minor)
		}
	}
}
