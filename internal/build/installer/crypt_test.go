package installer

import (
	"os/exec"
	"strings"
	"testing"
)

func TestSHA512Crypt(t *testing.T) {
	// Vectors from Drepper's SHA-crypt specification.
	for _, c := range []struct{ pw, salt, want string }{
		{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	} {
		if got := SHA512Crypt(c.pw, c.salt); got != c.want {
			t.Errorf("SHA512Crypt(%q, %q) = %s, want %s", c.pw, c.salt, got, c.want)
		}
	}
	// glibc's crypt(3) through python3 as an oracle, for other lengths.
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	for _, pw := range []string{"S3cret'pass", "x", strings.Repeat("long password ", 9)} {
		out, err := exec.Command("python3", "-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], '$6$AbCd./0123456789'))", pw).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := SHA512Crypt(pw, "AbCd./0123456789"), strings.TrimSpace(string(out)); got != want {
			t.Errorf("%q: %s, crypt(3) says %s", pw, got, want)
		}
	}
}
