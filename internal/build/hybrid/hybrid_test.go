package hybrid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/imgfmt"
	"github.com/vmroot/vmroot/internal/testimg"
)

const (
	isolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	ldlinux     = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// isoWith builds an ISO from a tree holding isolinux with xorriso, passing
// it extra mkisofs arguments (the boot options).
func isoWith(t *testing.T, extra ...string) string {
	t.Helper()
	testimg.Need(t, "xorriso")
	for p, pkg := range map[string]string{isolinuxBin: "isolinux", ldlinux: "syslinux-common"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s missing (Debian package %s)", p, pkg)
		}
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "isolinux"), 0o755)
	testimg.Run(t, "cp", isolinuxBin, ldlinux, filepath.Join(tree, "isolinux"))
	os.WriteFile(filepath.Join(tree, "isolinux/isolinux.cfg"), []byte("DEFAULT x\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "efi.img"), bytes.Repeat([]byte{0xe5}, 1<<20), 0o644)
	os.WriteFile(filepath.Join(tree, "data"), bytes.Repeat([]byte("vmroot"), 500000), 0o644)
	iso := filepath.Join(dir, "in.iso")
	testimg.Run(t, "xorriso", append(append([]string{"-as", "mkisofs", "-quiet", "-R", "-o", iso}, extra...), tree)...)
	return iso
}

var bootArgs = []string{"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4"}

func TestWrite(t *testing.T) {
	for _, c := range []struct {
		name  string
		table bool // the ISO already has a valid boot info table
	}{{"no boot info table", false}, {"boot info table", true}} {
		t.Run(c.name, func(t *testing.T) {
			args := bootArgs
			if c.table {
				args = append(args, "-boot-info-table")
			}
			iso := isoWith(t, args...)
			in, _ := os.ReadFile(iso)
			out := filepath.Join(t.TempDir(), "disk.raw")
			if err := Write(iso, out, imgfmt.Raw, DefaultMBR); err != nil {
				t.Fatal(err)
			}
			if after, _ := os.ReadFile(iso); !bytes.Equal(after, in) {
				t.Fatal("the ISO was written")
			}
			d, _ := os.ReadFile(out)
			if len(d)%(1<<20) != 0 || len(d) < len(in) || len(d)-len(in) >= 1<<20 {
				t.Fatalf("disk of %d bytes for a %d-byte ISO: want it padded to the next MiB", len(d), len(in))
			}
			code, _ := os.ReadFile(DefaultMBR)
			le := binary.LittleEndian
			block := le.Uint32(in[17*2048+71:]) // catalog, then its default entry
			block = le.Uint32(in[int(block)*2048+32+8:])
			switch {
			case !bytes.Equal(d[:432], code):
				t.Error("boot code is not the MBR file's")
			case le.Uint64(d[432:]) != uint64(block)*4:
				t.Errorf("boot file sector %d, want %d", le.Uint64(d[432:]), block*4)
			case d[510] != 0x55 || d[511] != 0xaa:
				t.Error("no boot signature")
			case len(bytes.Trim(d[512:32768], "\x00")) != 0:
				t.Error("system area past the MBR not cleared")
			}
			// Beyond the system area the disk is the ISO, but for the table.
			tab := int(block)*2048 + 8
			if !bytes.Equal(d[32768:tab], in[32768:tab]) || !bytes.Equal(d[tab+16:len(in)], in[tab+16:]) || len(bytes.Trim(d[len(in):], "\x00")) != 0 {
				t.Error("disk content differs from the ISO outside the MBR and the boot info table")
			}
			bin, _ := os.ReadFile(isolinuxBin)
			var sum uint32
			for i := 64; i+4 <= len(bin); i += 4 {
				sum += le.Uint32(bin[i:])
			}
			got := [4]uint32{le.Uint32(d[tab:]), le.Uint32(d[tab+4:]), le.Uint32(d[tab+8:]), le.Uint32(d[tab+12:])}
			if want := [4]uint32{16, block, uint32(len(bin)), sum}; got != want {
				t.Errorf("boot info table %v, want %v", got, want)
			}
			if c.table != bytes.Equal(d[tab:tab+16], in[tab:tab+16]) {
				t.Errorf("ISO with valid table: %v; table rewritten: %v", c.table, !bytes.Equal(d[tab:tab+16], in[tab:tab+16]))
			}
			testimg.Need(t, "sfdisk")
			dump := testimg.Run(t, "sfdisk", "--dump", out)
			want := fmt.Sprintf("disk.raw1 : start=%12d, size=%12d, type=17, bootable", 0, len(d)/512)
			if !strings.Contains(dump, want) {
				t.Errorf("sfdisk --dump lacks %q:\n%s", want, dump)
			}
		})
	}
}

// TestFormats checks the vmdk and qcow2 disks hold what the raw one does.
func TestFormats(t *testing.T) {
	testimg.Need(t, "qemu-img")
	iso := isoWith(t, bootArgs...)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	if err := Write(iso, raw, imgfmt.Raw, DefaultMBR); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmdk", "vmdk:streamOptimized", "qcow2"} {
		kind, _, _ := strings.Cut(f, ":")
		out := filepath.Join(dir, strings.ReplaceAll(f, ":", "-"))
		if err := Write(iso, out, imgfmt.Format(f), DefaultMBR); err != nil {
			t.Fatal(err)
		}
		testimg.Run(t, "qemu-img", "compare", "-q", "-f", kind, "-F", "raw", out, raw)
	}
}

func TestErrors(t *testing.T) {
	good := isoWith(t, bootArgs...)
	dir := t.TempDir()
	out := filepath.Join(dir, "disk.raw")
	short := filepath.Join(dir, "short.bin")
	os.WriteFile(short, make([]byte, 100), 0o644)
	for _, c := range []struct {
		name, iso, mbr string
		want           string
		is             error
	}{
		{"no El Torito", isoWith(t), DefaultMBR, "", ErrNoBIOSBoot},
		{"EFI only", isoWith(t, "-e", "efi.img", "-no-emul-boot"), DefaultMBR, "", ErrNoBIOSBoot},
		{"not isolinux", isoWith(t, "-b", "data", "-no-emul-boot"), DefaultMBR, "boot image /DATA is not an isolinux.bin with a hybrid entry point", nil},
		{"not an ISO", short, DefaultMBR, "short.bin: not an ISO9660 image", nil},
		{"bad MBR file", good, short, "short.bin: not MBR boot code", nil},
		{"missing MBR file", good, filepath.Join(dir, "nope.bin"), "nope.bin", nil},
		{"output is the input", good, DefaultMBR, "is the input ISO", nil},
	} {
		dest := out
		if c.name == "output is the input" {
			dest = c.iso
		}
		err := Write(c.iso, dest, imgfmt.Raw, c.mbr)
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case c.is != nil && (!errors.Is(err, c.is) || !strings.HasPrefix(err.Error(), c.iso+": ")):
			t.Errorf("%s: %v, want %v naming the ISO", c.name, err, c.is)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Dir(good)); len(ents) != 2 { // tree/ and in.iso
		t.Errorf("beside the input: %v", ents)
	}
}
