package imgfmt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/bootsector"
)

// qemuFormat is qemu's name for each format; ISO is a raw image to qemu.
var qemuFormat = map[Format]string{
	Raw: "raw", QCOW2: "qcow2", VMDK: "vmdk", VDI: "vdi", VHD: "vpc", VHDFixed: "vpc", ISO: "raw",
}

// qemuChecks lists the formats qemu-img check can check.
var qemuChecks = map[Format]bool{QCOW2: true, VMDK: true, VDI: true}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not found: install the Debian package %s", tool, pkg)
	}
}

// writeImage writes content as format f to a file in dir.
func writeImage(t *testing.T, dir string, f Format, content []byte) string {
	t.Helper()
	name := "disk-" + string(f)
	if f == VMDK {
		name += ".vmdk"
	}
	path := filepath.Join(dir, name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(out)
	err = Write(bw, f, bytes.NewReader(content), int64(len(content)), Options{Name: name})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write %s: %v", f, err)
	}
	return path
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// bootSector is the content of the small test images.
func bootSector(t *testing.T) []byte {
	t.Helper()
	b, err := bootsector.Build([]byte("imgfmt test"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scatteredContent is a 3 MiB + 100 byte disk with data in a few places
// chosen to need several qcow2 L2 tables, L1 clusters and refcount blocks,
// two VMDK grain tables, several VDI and VHD blocks, and a partial last
// sector.
func scatteredContent() []byte {
	b := make([]byte, 3<<20+100)
	fill := func(off, n int) {
		for i := range n {
			b[off+i] = byte(off*7 + i*13 + 1)
		}
	}
	fill(0, 512)
	fill(40000, 700)        // crosses a sector boundary
	fill(1<<20+4096-10, 20) // crosses a 4 KiB grain/block boundary
	fill(2<<20+8192, 5000)  // second VMDK grain table
	for off := 2<<20 + 65536; off < 3<<20; off += 3000 {
		fill(off, 1) // many clusters: several refcount blocks
	}
	fill(len(b)-100, 100)
	return b
}

type imgInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

// TestQemuImg checks each writer against qemu-img, an independent reader:
// info reports the format and virtual size, check (where qemu-img has one)
// finds no errors or leaks, and converting back to raw gives the content
// followed by zeros.
func TestQemuImg(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	boot := bootSector(t)
	scattered := scatteredContent()
	vhdScattered, err := VHDDiskSize(int64(len(scattered)))
	if err != nil {
		t.Fatal(err)
	}
	const scatteredSectors = int64(3<<20+100+511) / 512 * 512
	cases := []struct {
		name     string
		content  []byte
		formats  map[Format]int64 // format: expected virtual size
		fileSize map[Format]int64 // exact file size where it is promised
	}{
		{"bootsector", boot,
			map[Format]int64{Raw: 512, QCOW2: 512, VMDK: 512, VDI: 512,
				VHD: 68 * 512, VHDFixed: 68 * 512, ISO: ISOSize},
			map[Format]int64{
				Raw:      512,
				QCOW2:    6 * 512,                             // header, L1, refcount table, refcount block, L2, data
				VMDK:     (12 + 8) * 512,                      // header, descriptor, RGD, 4 RGT, GD, 4 GT; one 8-sector grain
				VDI:      1024 + 1<<20,                        // header, block map, one 1 MiB block
				VHD:      512 + 1024 + 512 + 512 + 4096 + 512, // footer, header, BAT, bitmap+block, footer
				VHDFixed: 68*512 + 512,
				ISO:      (23 + 720) * 2048,
			}},
		{"scattered", scattered,
			map[Format]int64{Raw: scatteredSectors, QCOW2: scatteredSectors, VMDK: scatteredSectors,
				VDI: scatteredSectors, VHD: vhdScattered, VHDFixed: vhdScattered},
			nil},
	}
	for _, c := range cases {
		for f, vsize := range c.formats {
			t.Run(c.name+"/"+string(f), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				path := writeImage(t, dir, f, c.content)
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if want, ok := c.fileSize[f]; ok && st.Size() != want {
					t.Errorf("file is %d bytes, want %d", st.Size(), want)
				}
				t.Logf("%s: %d bytes for %d bytes of content", f, st.Size(), len(c.content))

				var info imgInfo
				// No -f: qemu must recognise the format by itself,
				// except a fixed VHD, whose only signature is at the end.
				args := []string{"info", "--output=json"}
				if f == VHDFixed {
					args = append(args, "-f", "vpc")
				}
				if err := json.Unmarshal(run(t, "qemu-img", append(args, path)...), &info); err != nil {
					t.Fatal(err)
				}
				if info.Format != qemuFormat[f] || info.VirtualSize != vsize {
					t.Errorf("qemu-img info: format %q, virtual size %d; want %q, %d",
						info.Format, info.VirtualSize, qemuFormat[f], vsize)
				}

				if qemuChecks[f] {
					out := run(t, "qemu-img", "check", "-f", qemuFormat[f], path)
					if !bytes.Contains(out, []byte("No errors were found")) || bytes.Contains(out, []byte("leaked")) {
						t.Errorf("qemu-img check:\n%s", out)
					}
				}

				if f == ISO {
					return // qemu sees the CD itself; TestISO reads the boot image
				}
				rawPath := filepath.Join(dir, "converted.raw")
				run(t, "qemu-img", "convert", "-f", qemuFormat[f], "-O", "raw", path, rawPath)
				got, err := os.ReadFile(rawPath)
				if err != nil {
					t.Fatal(err)
				}
				want := append(append([]byte{}, c.content...), make([]byte, vsize-int64(len(c.content)))...)
				if !bytes.Equal(got, want) {
					t.Errorf("qemu-img convert gave %d bytes that differ from the %d expected (first difference at %d)",
						len(got), len(want), firstDiff(got, want))
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestVHDAgainstQemu compares the VHD size rounding, CHS geometry and
// checksums with images qemu-img creates, whose geometry code follows the
// same specification independently.
func TestVHDAgainstQemu(t *testing.T) {
	needTool(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	for _, size := range []int64{512, 34816, 34817, 1 << 20, 100<<20 + 512, 1 << 30, 3<<30 + 12345} {
		path := filepath.Join(dir, fmt.Sprintf("q%d.vhd", size))
		run(t, "qemu-img", "create", "-q", "-f", "vpc", path, strconv.FormatInt(size, 10))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		footer := b[:512] // the dynamic disk's copy of the footer
		want := int64(binary.BigEndian.Uint64(footer[48:]))
		got, err := VHDDiskSize(size)
		if err != nil || got != want {
			t.Errorf("size %d: VHDDiskSize %d, %v; qemu-img made %d", size, got, err, want)
			continue
		}
		c, h, s := vhdGeometry(got / 512)
		if geo := binary.BigEndian.Uint32(footer[56:]); geo != uint32(c)<<16|uint32(h)<<8|uint32(s) {
			t.Errorf("size %d: geometry %d/%d/%d, qemu-img wrote %#08x", size, c, h, s, geo)
		}
		// Our checksum of qemu's footer and dynamic header must be theirs.
		var f vhdFooter
		var dh vhdDynamicHeader
		if err := binary.Read(bytes.NewReader(footer), binary.BigEndian, &f); err != nil {
			t.Fatal(err)
		}
		if err := binary.Read(bytes.NewReader(b[512:1536]), binary.BigEndian, &dh); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.encode(), footer) {
			t.Errorf("size %d: re-encoded qemu footer differs (checksum ours %#x, theirs %#x)",
				size, binary.BigEndian.Uint32(f.encode()[64:]), f.Checksum)
		}
		if !bytes.Equal(dh.encode(), b[512:1536]) {
			t.Errorf("size %d: re-encoded qemu dynamic header differs", size)
		}
	}
}

// TestISO checks the CD with xorriso, an independent ISO 9660 and El
// Torito reader: the volume, the boot catalog entry (BIOS, 1.44 MB floppy
// emulation, one sector loaded) and the boot image it points to.
func TestISO(t *testing.T) {
	needTool(t, "xorriso", "xorriso")
	dir := t.TempDir()
	// A full 1.44 MB of non-zero content shows where every byte lands.
	content := make([]byte, floppy144Size)
	for i := range content {
		content[i] = byte(i*31 + i>>11)
	}
	copy(content, bootSector(t))
	path := writeImage(t, dir, ISO, content)

	out := string(run(t, "xorriso", "-indev", path, "-report_el_torito", "plain", "-pvd_info"))
	for _, want := range []string{
		"Volume id    : 'VMROOT'",
		fmt.Sprintf("Media summary: 1 session, %d data blocks", ISOSize/2048),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("xorriso report lacks %q:\n%s", want, out)
		}
	}
	// "El Torito boot img :   1  BIOS  y  fd1.4  0x0000  0x00      1          23"
	m := regexp.MustCompile(`El Torito boot img :\s+1\s+BIOS\s+y\s+fd1\.4\s+0x0000\s+0x00\s+1\s+(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("xorriso reports no bootable BIOS 1.44 MB floppy entry:\n%s", out)
	}
	if !regexp.MustCompile(`El Torito img blks :\s+1\s+720\b`).MatchString(out) {
		t.Errorf("boot image is not 720 blocks:\n%s", out)
	}
	lba, _ := strconv.Atoi(m[1])
	iso, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if end := lba*2048 + floppy144Size; end > len(iso) {
		t.Fatalf("boot image at LBA %d runs past the end of the %d-byte ISO", lba, len(iso))
	}
	if !bytes.Equal(iso[lba*2048:lba*2048+floppy144Size], content) {
		t.Error("the boot image xorriso points to is not the content")
	}

	// xorriso's own extraction (it drops the volume's final sector, for
	// its own ISOs too, so compare what it gives).
	ext := filepath.Join(dir, "ext")
	if err := os.Mkdir(ext, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "xorriso", "-osirrox", "on", "-indev", path, "-extract_boot_images", ext+"/")
	img, err := os.ReadFile(filepath.Join(ext, "eltorito_img1_bios.img"))
	if err != nil {
		t.Fatal(err)
	}
	if len(img) < 512 || !bytes.Equal(img, content[:len(img)]) {
		t.Errorf("extracted boot image (%d bytes) is not a prefix of the content", len(img))
	}
}
