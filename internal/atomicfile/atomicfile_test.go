package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.img")
	os.WriteFile(dst, []byte("old"), 0o600)

	f, err := Create(dst, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Errorf("destination changed before Commit: %q", b)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // deferred Abort after Commit must keep the file
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Errorf("after Commit: %q", b)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}

	g, err := Create(dst, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("partial")
	g.Abort()
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Errorf("Abort touched the destination: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary file left behind: %v", ents)
	}

	if _, err := Create(filepath.Join(dir, "missing", "x"), 0o644); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}
