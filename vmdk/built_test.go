package vmdk

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
)

// TestBuiltImages reads the tiny images the fuzz seeds use, so the seeds
// are known to be valid, and covers COWD, which no available tool writes.
func TestBuiltImages(t *testing.T) {
	dir := t.TempDir()
	data := tinyData(64)
	zeroedWant := bytes.Clone(data)
	clear(zeroedWant[1*4096 : 2*4096])
	clear(zeroedWant[3*4096 : 4*4096])
	cases := []struct {
		name   string
		file   []byte
		want   []byte
		layout string
	}{
		{"hosted", buildHosted(data, 4, 4, nil), data, LayoutHostedSparse},
		{"zeroed", buildHosted(data, 8, 2, map[int]bool{1: true, 3: true}), zeroedWant, LayoutHostedSparse},
		{"stream", buildStreamVMware(data, 4, 4), data, LayoutStreamVMware},
		{"streamGT1", buildStreamVMware(data, 8, 1), data, LayoutStreamVMware},
		{"cowd", buildCOWD(data, 2), data, LayoutCOWD},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := openBytes(t, dir, tc.name+".vmdk", tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if l := d.Info().Extents[0].Layout; l != tc.layout {
				t.Errorf("layout %q, want %q", l, tc.layout)
			}
			mustEqual(t, "read", readAll(t, d, 5000), tc.want)
			randomReads(t, d, tc.want, 100, 1)
		})
	}
}

// TestCOWDDelta reads a vmfsSparse descriptor whose VMFSSPARSE (COWD)
// extent falls through to a flat parent where it has no grain.
func TestCOWDDelta(t *testing.T) {
	dir := t.TempDir()
	parent := tinyData(64)
	for i := range parent {
		parent[i] ^= 0x5A
	}
	writeFile(t, filepath.Join(dir, "base-flat.vmdk"), parent)
	writeFile(t, filepath.Join(dir, "base.vmdk"), []byte("version=1\nCID=0000abcd\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 64 VMFS \"base-flat.vmdk\"\n"))
	child := make([]byte, len(parent))
	copy(child[5000:], bytes.Repeat([]byte{0xC0}, 3000))
	writeFile(t, filepath.Join(dir, "d-delta.vmdk"), buildCOWD(child, 2))
	writeFile(t, filepath.Join(dir, "d.vmdk"), []byte(fmt.Sprintf("version=1\nCID=00000001\nparentCID=0000abcd\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW 64 VMFSSPARSE \"d-delta.vmdk\"\n")))
	want := bytes.Clone(parent)
	// Grains of 1 KiB: those the child wrote replace the parent's whole.
	for g := 0; g < len(child); g += 1024 {
		if !bytes.Equal(child[g:g+1024], make([]byte, 1024)) {
			copy(want[g:g+1024], child[g:g+1024])
		}
	}
	d, err := Open(filepath.Join(dir, "d.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustEqual(t, "COWD delta", readAll(t, d, 3333), want)
}
