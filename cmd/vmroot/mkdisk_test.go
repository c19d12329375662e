package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/build/mkdisk"
	"github.com/vmroot/vmroot/internal/testimg"
)

// extractPart copies sectors [start, start+n) of img into a sparse file of
// its own, for tools (fsck.fat) that take no offset.
func buildExtractPart(t *testing.T, img string, start, n int64) string {
	t.Helper()
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := filepath.Join(t.TempDir(), fmt.Sprintf("part-%d.img", start))
	dst, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Truncate(n * 512); err != nil {
		t.Fatal(err)
	}
	// Copy only the data extents (SEEK_DATA/SEEK_HOLE), so a sparse 4 GiB
	// partition costs what it holds.
	const seekData, seekHole = 3, 4
	begin, end := start*512, (start+n)*512
	for pos := begin; pos < end; {
		d, err := src.Seek(pos, seekData)
		if err != nil || d >= end {
			break // ENXIO: no data after pos
		}
		h, err := src.Seek(d, seekHole)
		if err != nil {
			t.Fatal(err)
		}
		h = min(h, end)
		if _, err := io.Copy(io.NewOffsetWriter(dst, d-begin), io.NewSectionReader(src, d, h-d)); err != nil {
			t.Fatal(err)
		}
		pos = h
	}
	return p
}

var mkdiskDumpRE = regexp.MustCompile(`(?m)^\S+?(\d+) : start=\s*(\d+), size=\s*(\d+), type=([0-9a-fA-F-]+)(, bootable)?`)

func TestMkdiskFlash64(t *testing.T) {
	testimg.Need(t, "sfdisk", "fsck.fat", "mtype")
	specPath := filepath.Join(testimg.RepoRoot(), "testdata", "flash64.toml")
	text, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := mkdisk.Parse(specPath, filepath.Dir(specPath), text)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "flash.img")
	ok(t, "mkdisk", specPath, "-o", img)

	// sfdisk's view equals the spec, slot by slot.
	dump := testimg.Run(t, "sfdisk", "--dump", img)
	if !strings.Contains(dump, "label: dos") || !strings.Contains(dump, "label-id: 0x0e5a1f64") {
		t.Fatalf("sfdisk --dump:\n%s", dump)
	}
	got := map[string]string{}
	for _, m := range mkdiskDumpRE.FindAllStringSubmatch(dump, -1) {
		if m[3] != "0" {
			got[m[1]] = fmt.Sprintf("start=%s size=%s type=%s boot=%v", m[2], m[3], m[4], m[5] != "")
		}
	}
	if len(got) != len(spec.Parts) {
		t.Fatalf("sfdisk lists %d partitions, the spec %d:\n%s", len(got), len(spec.Parts), dump)
	}
	for _, p := range spec.Parts {
		want := fmt.Sprintf("start=%d size=%d type=%x boot=%v", p.Start, p.Sectors, p.MBRType, p.Bootable)
		if g := got[fmt.Sprint(p.Number)]; g != want {
			t.Errorf("partition %d: sfdisk %q, spec %q", p.Number, g, want)
		}
	}
	if got["4"] != "start=32 size=8160 type=4 boot=true" || got["1"] != "start=8192 size=122880 type=5 boot=false" ||
		got["5"] != "start=8224 size=122848 type=6 boot=false" {
		t.Errorf("layout differs from the 64 MB flash recipe: %v", got)
	}

	// Every FAT passes fsck and mtools reads the files.
	for _, p := range spec.Parts {
		if p.FS == 0 {
			continue
		}
		out := testimg.Run(t, "fsck.fat", "-n", "-v", buildExtractPart(t, img, p.Start, p.Sectors))
		if !strings.Contains(out, "16 bit entries") {
			t.Errorf("partition %d is not FAT16:\n%s", p.Number, out)
		}
		label := testimg.Run(t, "mlabel", "-s", "-i", fmt.Sprintf("%s@@%d", img, p.Start*512), "::")
		if !strings.Contains(label, p.Label) {
			t.Errorf("partition %d label %q, want %q", p.Number, label, p.Label)
		}
	}
	cfg := testimg.Run(t, "mtype", "-i", img+"@@16384", "::/syslinux.cfg")
	if want, _ := os.ReadFile(filepath.Join(filepath.Dir(specPath), "flash64/syslinux.cfg")); cfg != string(want) {
		t.Errorf("syslinux.cfg = %q", cfg)
	}
	boot := testimg.Run(t, "mtype", "-i", fmt.Sprintf("%s@@%d", img, 8224*512), "::/boot.cfg")
	if !strings.Contains(boot, "modules=/k.b00 --- /s.v00") {
		t.Errorf("boot.cfg = %q", boot)
	}

	// vmroot's own reader walks the EBR chain to the logical partition.
	info := ok(t, "info", img)
	if !regexp.MustCompile(`(?m)^\s*5\s+4210688\s`).MatchString(info) {
		t.Errorf("vmroot info does not list logical partition 5 at sector 8224:\n%s", info)
	}
	ls := ok(t, "ls", "-p", "5", img, "/")
	for _, n := range []string{"boot.cfg", "upgrade"} {
		if !strings.Contains(ls, n) {
			t.Errorf("vmroot ls -p 5 lacks %s:\n%s", n, ls)
		}
	}
	ls = ok(t, "ls", "-p", "5", img, "/upgrade")
	if !strings.Contains(ls, "metadata.zip") {
		t.Errorf("vmroot ls -p 5 /upgrade:\n%s", ls)
	}
}

// TestMkdiskGPTFromImage builds a GPT disk as VMDK, then a second disk whose
// files come from inside the first one.
func TestMkdiskGPTFromImage(t *testing.T) {
	testimg.Need(t, "sgdisk", "fsck.fat", "mtype", "qemu-img")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tree/boot/grub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree/boot/vmlinuz"), []byte(strings.Repeat("kernel", 50000)), 0o644)
	os.WriteFile(filepath.Join(dir, "tree/boot/grub/grub.cfg"), []byte("set timeout=1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "raw.bin"), []byte(strings.Repeat("R", 1000)), 0o644)
	os.WriteFile(filepath.Join(dir, "a.toml"), []byte(`
size = "80MiB"
table = "gpt"
[[partition]]
number = 1
type = "esp"
size = "70MiB"
filesystem = "fat32"
label = "ESP"
[[partition.file]]
src = "tree"
[[partition]]
number = 2
type = "linux"
raw = "raw.bin"
`), 0o644)
	a := filepath.Join(dir, "a.vmdk")
	ok(t, "mkdisk", filepath.Join(dir, "a.toml"), "--format", "vmdk", "-o", a)
	araw := filepath.Join(dir, "a.raw")
	testimg.Run(t, "qemu-img", "convert", "-f", "vmdk", "-O", "raw", a, araw)
	sg := testimg.Run(t, "sgdisk", "-v", "-p", araw)
	if !strings.Contains(sg, "No problems found") || !regexp.MustCompile(`(?m)^\s*1\s+2048\s+145407\s.*EF00`).MatchString(sg) {
		t.Fatalf("sgdisk:\n%s", sg)
	}
	testimg.Run(t, "fsck.fat", "-n", buildExtractPart(t, araw, 2048, 70*2048))
	if got := testimg.Run(t, "mtype", "-i", araw+"@@1048576", "::/boot/grub/grub.cfg"); got != "set timeout=1\n" {
		t.Errorf("grub.cfg = %q", got)
	}
	rawPart, _ := os.ReadFile(buildExtractPart(t, araw, 2048+70*2048, 2))
	if string(rawPart[:1000]) != strings.Repeat("R", 1000) {
		t.Errorf("raw partition content not copied")
	}

	os.WriteFile(filepath.Join(dir, "b.toml"), []byte(`
size = "4MiB"
[[partition]]
number = 1
type = 0x01
filesystem = "fat12"
[[partition.file]]
src = "a.vmdk:1:/boot"
dst = "/from-a"
[[partition.file]]
src = "a.vmdk:/boot/grub/grub.cfg"
dst = "/GRUB.CFG"
`), 0o644)
	b := filepath.Join(dir, "b.img")
	ok(t, "mkdisk", filepath.Join(dir, "b.toml"), "-o", b)
	testimg.Run(t, "fsck.fat", "-n", buildExtractPart(t, b, 2048, 4*2048-2048))
	if got := testimg.Run(t, "mtype", "-i", b+"@@1048576", "::/from-a/vmlinuz"); got != strings.Repeat("kernel", 50000) {
		t.Errorf("vmlinuz from a.vmdk: %d bytes", len(got))
	}
	if got := testimg.Run(t, "mtype", "-i", b+"@@1048576", "::/GRUB.CFG"); got != "set timeout=1\n" {
		t.Errorf("GRUB.CFG from a.vmdk = %q", got)
	}
}

func TestMkdiskBadSpec(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, spec, want string }{
		{"overlap.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0c\nstart = 2048\nsize = 4096\n[[partition]]\nnumber = 2\ntype = 0x83\nstart = 4000\nsize = 100\n", "overlap"},
		{"toobig.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0c\nsize = \"9MiB\"\n", "does not fit"},
		{"logical.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x05\nstart = 2048\nsize = 2048\n[[partition]]\nnumber = 5\ntype = 0x06\nstart = 5000\nsize = 10\n", "inside extended"},
		{"key.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0c\nbootabel = true\n", "line 5: unknown key"},
		{"type.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\n\ntype = \"fat\"\n", "line 5: partition 1: key type"},
		{"syntax.toml", "size = \"8MiB\"\n[[partition]\nnumber = 1\n", "end of table array name"},
		{"fs.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0c\nfilesystem = \"fat32\"\n", "too small for FAT32"},
		{"missing.toml", "size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0c\nfilesystem = \"fat16\"\n[[partition.file]]\nsrc = \"nope\"\n", "nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, []byte(c.spec), 0o644)
			out := filepath.Join(dir, "out-"+c.name, "disk.img")
			os.MkdirAll(filepath.Dir(out), 0o755)
			msg := fails(t, c.name, "mkdisk", p, "-o", out)
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q lacks %q", msg, c.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Errorf("partial output left behind: %v", ents)
			}
		})
	}
}

// TestMkdiskFromExtImage copies /boot out of an ext2 appliance image, as
// the classic recipe copies a kernel: a symbolic link to a file becomes a
// copy of the file; a link to a directory is refused.
func TestMkdiskFromExtImage(t *testing.T) {
	testimg.Need(t, "mke2fs", "mtype", "fsck.fat")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "boot"), 0o755)
	os.WriteFile(filepath.Join(tree, "boot", "vmlinuz-6.1"), []byte(strings.Repeat("K", 70000)), 0o644)
	os.Symlink("vmlinuz-6.1", filepath.Join(tree, "boot", "vmlinuz"))
	testimg.Ext(t, dir, tree, "ext2", 8)
	spec := filepath.Join(dir, "s.toml")
	os.WriteFile(spec, []byte("size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0e\nbootable = true\nfilesystem = \"fat16\"\n[[partition.file]]\nsrc = \"ext2-0.img:/boot\"\ndst = \"/\"\n"), 0o644)
	out := filepath.Join(dir, "d.img")
	ok(t, "mkdisk", spec, "-o", out)
	for _, n := range []string{"vmlinuz", "vmlinuz-6.1"} {
		if got := testimg.Run(t, "mtype", "-i", out+"@@1048576", "::/"+n); got != strings.Repeat("K", 70000) {
			t.Errorf("%s: %d bytes", n, len(got))
		}
	}
	testimg.Run(t, "fsck.fat", "-n", buildExtractPart(t, out, 2048, 14336))

	os.Symlink("boot", filepath.Join(tree, "bootlink"))
	os.Remove(filepath.Join(dir, "ext2-0.img"))
	testimg.Ext(t, dir, tree, "ext2", 8)
	os.WriteFile(spec, []byte("size = \"8MiB\"\n[[partition]]\nnumber = 1\ntype = 0x0e\nfilesystem = \"fat16\"\n[[partition.file]]\nsrc = \"ext2-0.img:/\"\n"), 0o644)
	msg := fails(t, "s.toml", "mkdisk", spec, "-o", out+".2")
	if !strings.Contains(msg, "bootlink") || !strings.Contains(msg, "other than a file") {
		t.Errorf("error %q", msg)
	}
}
