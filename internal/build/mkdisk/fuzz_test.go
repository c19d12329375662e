package mkdisk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/build/disk"
	"github.com/vmroot/vmroot/internal/testimg"
)

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(testimg.RepoRoot(), "testdata", "flash64.toml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range []string{
		"size = \"80MiB\"\ntable = \"gpt\"\n[[partition]]\nnumber = 1\ntype = \"esp\"\nfilesystem = \"fat32\"\n",
		"size = 4096\n[[partition]]\nnumber = 1\ntype = \"0c\"\nstart = \"1MiB\"\nsize = \"1024s\"\n",
		"size = \"8MiB\"\n[[partition]]\nnumber = 2\ntype = 0x0f\n[[partition]]\nnumber = 5\ntype = 0x83\nsize = 100\n[[partition]]\nnumber = 6\ntype = 0x83\n",
		"size = \"1TiB\"\n", "[[partition]]\n", "size = -1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := Parse("spec.toml", "/nonexistent", text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "spec.toml") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name the file in one line", err)
			}
			return
		}
		if err := s.Table.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid table: %v", err)
		}
		for _, p := range s.Parts {
			if p.Start < s.Table.FirstUsable() || p.End() > s.Table.LastUsable() {
				t.Fatalf("partition %d outside the disk", p.Number)
			}
			if s.Table.Scheme == disk.MBR && p.FS != 0 && disk.IsExtended(p.MBRType) {
				t.Fatal("a filesystem on an extended partition")
			}
		}
	})
}
