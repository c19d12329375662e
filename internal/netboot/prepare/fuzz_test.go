package prepare

import (
	"bytes"
	"testing"
)

// FuzzWalk feeds arbitrary bytes to the initramfs reader with small
// limits: it must return, without panicking and within the limits.
func FuzzWalk(f *testing.F) {
	arch := newc(f, tree(f, debianTree(nil)), false)
	micro := newc(f, tree(f, map[string]string{"kernel/x86/microcode/AuthenticAMD.bin": "u"}), false)
	f.Add(arch)
	f.Add(append(append([]byte{}, micro...), compress(f, arch, "gzip", "-c")...))
	f.Add(compress(f, arch, "zstd", "-q", "-c"))
	f.Add(compress(f, arch, "xz", "--check=crc32", "-c"))
	f.Add(compress(f, arch, "xz", "--format=lzma", "-c"))
	f.Add(compress(f, arch, "bzip2", "-c"))
	f.Add(compress(f, arch, "lz4", "-l", "-q", "-c"))
	f.Add([]byte("070701"))
	// Small limits keep each run short: a mutated stream can decode to MaxBytes.
	lim := Limits{MaxEntries: 1000, MaxBytes: 256 << 10, MaxKeepFile: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		var kept int
		Walk(bytes.NewReader(b), int64(len(b)), lim, func(string) bool { return true }, func(e Entry) error {
			n++
			kept += len(e.Data)
			if int64(len(e.Data)) > lim.MaxKeepFile {
				t.Fatalf("kept %d bytes of %s", len(e.Data), e.Name)
			}
			return nil
		})
		if n > lim.MaxEntries || int64(kept) > lim.MaxBytes {
			t.Fatalf("%d entries, %d bytes kept", n, kept)
		}
		CheckInitramfs(bytes.NewReader(b), int64(len(b)), "x", lim)
	})
}
