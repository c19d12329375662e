package vmdk

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fuzzPath = "fuzz.vmdk"

// checkFuzzErr requires errors from untrusted bytes to be one-line *Error
// values naming the file.
func checkFuzzErr(t *testing.T, err error) {
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != fuzzPath {
		t.Fatalf("error %v (%T) is not an *Error naming the file", err, err)
	}
	if strings.ContainsAny(err.Error(), "\n") {
		t.Fatalf("multi-line error %q", err)
	}
}

var seedDescriptors = []string{
	// As qemu-img 7.2 writes them.
	"# Disk DescriptorFile\nversion=1\nCID=358e77ec\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW 16384 FLAT \"monolithicFlat-flat.vmdk\" 0\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"16\"\nddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\nddb.toolsVersion = \"2147483647\"\n",
	"# Disk DescriptorFile\nversion=1\nCID=a595d00b\nparentCID=83470260\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\n# Extent description\nRW 8192 SPARSE \"delta.vmdk\"\n# The Disk Data Base\n#DDB\nddb.virtualHWVersion = \"4\"\n",
	"# Disk DescriptorFile\nversion=1\nCID=b55b3b94\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n\n# Extent description\nRW 4194304 SPARSE \"bigs-s001.vmdk\"\nRW 4194304 SPARSE \"bigs-s002.vmdk\"\nRW 2097152 SPARSE \"bigs-s003.vmdk\"\n",
	// As VMDKstream writes it.
	"# Disk Descriptor File\n# Created by VMDKstream\nversion=1\n# Believe this is random\nCID=7e5b80a7\n# Indicates no parent\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n# Extent description\nRDONLY 16384 SPARSE \"call-me-stream.vmdk\"\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n",
	// VMware style, with every extent kind.
	"# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=ffffffff\r\nisNativeSnapshot=\"no\"\r\ncreateType=\"vmfs\"\r\n\r\nRW 4192256 VMFS \"a b-flat.vmdk\"\r\nRDONLY 100 FLAT \"/abs/x.vmdk\" 7\r\nNOACCESS 8 ZERO\r\nRW 64 VMFSSPARSE \"d-delta.vmdk\"\r\n\r\nddb.uuid = \"60 00 C2 9a\"\r\n",
}

func FuzzDescriptor(f *testing.F) {
	for _, s := range seedDescriptors {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// What parses must survive Encode and parse back the same.
		enc := d.Encode()
		d2, err := ParseDescriptor(enc)
		if err != nil {
			t.Fatalf("re-parse of encoded descriptor: %v\n%s", err, enc)
		}
		for i := range d.Extents {
			d.Extents[i].Line = 0
		}
		for i := range d2.Extents {
			d2.Extents[i].Line = 0
		}
		d2.HasCID = d.HasCID
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("round trip differs:\n%+v\n%+v\n%s", d, d2, enc)
		}
	})
}

// fuzzOpenSparse opens fuzzed bytes as a sparse extent and reads parts of
// it. Reads are bounded so each input runs quickly.
func fuzzOpenSparse(t *testing.T, b []byte) {
	r := bytes.NewReader(b)
	size := int64(-1)
	switch {
	case len(b) >= SectorSize && string(b[:4]) == MagicSparse:
		h, _ := DecodeSparseHeader(b)
		size = int64(h.Capacity) * SectorSize
	case len(b) >= 32 && string(b[:4]) == MagicCOWD:
		h, _ := DecodeCOWDHeader(b)
		size = int64(h.NumSectors) * SectorSize
	}
	e, err := openSparseFile(fuzzPath, r, int64(len(b)), max(size, 0), newCaches())
	checkFuzzErr(t, err)
	if err != nil {
		return
	}
	buf := make([]byte, 64*KiB)
	read := func(off int64) {
		n := min(int64(len(buf)), e.size-off)
		if off < 0 || n <= 0 {
			return
		}
		checkFuzzErr(t, e.readAt(buf[:n], off))
	}
	for off := int64(0); off < min(e.size, 512*KiB); off += int64(len(buf)) {
		read(off)
	}
	read(e.size - 100*KiB)
	read(e.size/2 + 777)
	// Unaligned small reads go through the grain cache.
	for off := int64(100); off < min(e.size, 64*KiB); off += 9000 {
		n := min(3000, e.size-off)
		checkFuzzErr(t, e.readAt(buf[:n], off))
	}
}

func addFileSeed(f *testing.F, path string) {
	if b, err := os.ReadFile(path); err == nil {
		f.Add(b)
	}
}

func FuzzSparseHeader(f *testing.F) {
	data := tinyData(64)
	f.Add(buildHosted(data, 4, 4, nil))
	f.Add(buildHosted(data, 8, 2, map[int]bool{1: true, 3: true}))
	f.Add(buildCOWD(data[:16*SectorSize], 1))
	// Real qemu-img files of a 128 KiB disk with one grain of data (qemu
	// reserves 64 KiB of metadata), when qemu-img is installed.
	if _, err := exec.LookPath("qemu-img"); err == nil {
		dir := f.TempDir()
		raw := filepath.Join(dir, "r.raw")
		os.WriteFile(raw, append(tinyData(8), make([]byte, 124*KiB)...), 0o644)
		for _, sf := range []string{"monolithicSparse", "streamOptimized"} {
			out := filepath.Join(dir, sf+".vmdk")
			if exec.Command("qemu-img", "convert", "-O", "vmdk", "-o", "subformat="+sf, raw, out).Run() == nil {
				addFileSeed(f, out)
			}
		}
	}
	f.Fuzz(fuzzOpenSparse)
}

func FuzzStreamOptimized(f *testing.F) {
	data := tinyData(64)
	f.Add(buildStreamVMware(data, 4, 4))
	f.Add(buildStreamVMware(data, 8, 1))
	if py, err := exec.LookPath("/usr/bin/python3"); err == nil && exec.Command(py, "-c", "import VMDKstream").Run() == nil {
		dir := f.TempDir()
		raw := filepath.Join(dir, "r.raw")
		os.WriteFile(raw, tinyData(64), 0o644)
		out := filepath.Join(dir, "s.vmdk")
		if exec.Command(py, "-m", "VMDKstream", raw, out).Run() == nil {
			addFileSeed(f, out)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := DecodeSparseHeader(b); err == nil && h.Validate(int64(len(b))) == nil {
			// The marker walk alone, as used when the footer is lost.
			_, _ = walkStream(bytes.NewReader(b), int64(len(b)), &h)
		}
		fuzzOpenSparse(t, b)
	})
}
