package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkLibnfsLsR runs nfs-ls -R over a 20,000-entry tree.
func BenchmarkLibnfsLsR(b *testing.B) {
	needRoot(b)
	tree := filepath.Join(b.TempDir(), "tree")
	for d := 0; d < 20; d++ {
		dp := filepath.Join(tree, "t", fmt.Sprintf("d%02d", d))
		os.MkdirAll(dp, 0o755)
		for i := 0; i < 999; i++ {
			os.WriteFile(filepath.Join(dp, fmt.Sprintf("f%04d", i)), []byte("x"), 0o644)
		}
	}
	f := newFixture(b, tree, []Host{{Name: "a", Addrs: addrs("127.0.0.1")}}, Unknown{}, "-N", "30000")
	url := fmt.Sprintf("nfs://127.0.0.1%s/t?version=3&nfsport=%d&mountport=%d", exportPath, f.port, f.port)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := exec.Command("nfs-ls", "-R", url).CombinedOutput(); err != nil {
			b.Fatal(err, string(out))
		}
	}
}
