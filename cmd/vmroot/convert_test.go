package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// TestConvert converts the appliance (4.2 GB, FAT and ext3 partitions, the
// ext one across the 2 GiB extent boundary) from several layouts to every
// output format, and holds each result to qemu-img compare against the
// source disk; qcow2 and sparse VMDK outputs must pass qemu-img check.
func TestConvert(t *testing.T) {
	a := buildAppliance(t)
	v := a.variants(t)
	type tc struct{ in, to string }
	var cases []tc
	for _, to := range []string{"raw", "qcow2", "vmdk", "vmdk:monolithicFlat", "vmdk:twoGbMaxExtentSparse", "vmdk:twoGbMaxExtentFlat", "vmdk:streamOptimized"} {
		cases = append(cases, tc{"twoGbMaxExtentFlat", to})
	}
	cases = append(cases, tc{"raw", "vmdk:streamOptimized"}, tc{"raw", "qcow2"}, tc{"streamOptimized-vmware", "raw"}, tc{"delta", "vmdk:twoGbMaxExtentSparse"})
	for _, c := range cases {
		t.Run(c.in+"->"+c.to, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.vmdk")
			format, sub, _ := strings.Cut(c.to, ":")
			if format != "vmdk" {
				out = filepath.Join(dir, "out."+format)
			}
			before := testimg.FileSHA256(t, v[c.in])
			ok(t, "convert", v[c.in], "-O", c.to, out)
			testimg.Run(t, "qemu-img", "compare", "-q", "-f", format, "-F", "raw", out, a.raw)
			if format == "qcow2" || format == "vmdk" && !strings.HasSuffix(sub, "Flat") {
				testimg.Run(t, "qemu-img", "check", "-q", "-f", format, out)
			}
			if testimg.FileSHA256(t, v[c.in]) != before {
				t.Fatal("the input changed")
			}
			// Nothing but the outputs is left in the directory.
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
			// A 4.2 GB disk with ~100 MB of data stays small in every format.
			var alloc int64
			for _, e := range ents {
				alloc += allocatedBytes(t, filepath.Join(dir, e.Name()))
			}
			if alloc > 256<<20 {
				t.Errorf("output allocates %d bytes: zeros were stored", alloc)
			}
		})
	}
}

func TestConvertRefusals(t *testing.T) {
	a := buildAppliance(t)
	v := a.variants(t)
	split := v["twoGbMaxExtentSparse"]
	ext := strings.TrimSuffix(split, ".vmdk") + "-s002.vmdk"
	before := testimg.FileSHA256(t, ext)
	fails(t, "appliance.vmdk", "convert", split, "-O", "vmdk:twoGbMaxExtentSparse", split)
	// A descriptor of another name over the same extents: writing a split
	// VMDK named like the original would replace its extents.
	other := filepath.Join(filepath.Dir(split), "other.vmdk")
	copyFile(t, split, other)
	defer os.Remove(other)
	fails(t, "appliance-s001.vmdk", "convert", other, "-O", "vmdk:twoGbMaxExtentSparse", split)
	fails(t, "appliance-s002.vmdk", "convert", split, "-O", "qcow2", ext)
	if testimg.FileSHA256(t, ext) != before {
		t.Fatal("an input extent changed")
	}
	dir := t.TempDir()
	fails(t, "nope.vmdk", "convert", filepath.Join(dir, "nope.vmdk"), "-O", "raw", filepath.Join(dir, "x"))
	bad := filepath.Join(dir, "bad.vmdk")
	os.WriteFile(bad, []byte("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 100 FLAT \"gone-flat.vmdk\" 0\n"), 0o644)
	fails(t, "gone-flat.vmdk", "convert", bad, "-O", "vmdk", filepath.Join(dir, "x.vmdk"))
	for _, args := range [][]string{
		{"convert", a.raw, "-O", "vmdk:monolithicSparce", filepath.Join(dir, "x")},
		{"convert", a.raw, "-O", "vdi", filepath.Join(dir, "x")},
		{"convert", a.raw, filepath.Join(dir, "x")},
		{"convert", a.raw, "-O", "raw", "--cid", "1234", filepath.Join(dir, "x")},
		{"convert", a.raw, "-O", "vmdk", "--cid", "xyz", filepath.Join(dir, "x")},
	} {
		if r := vmroot(t, args...); r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("vmroot %s: exit %d, want 2 with one line\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("failed conversions left files: %v", ents)
	}
}

// TestConvertDeterministic: with --cid, converting twice gives the same
// bytes.
func TestConvertDeterministic(t *testing.T) {
	a := buildAppliance(t)
	// The descriptor names the file: same name, two directories.
	x, y := filepath.Join(t.TempDir(), "x.vmdk"), filepath.Join(t.TempDir(), "x.vmdk")
	ok(t, "convert", a.raw, "-O", "vmdk:streamOptimized", "--cid", "c0ffee", "--adapter-type", "lsilogic", x)
	ok(t, "convert", a.raw, "-O", "vmdk:streamOptimized", "--cid", "c0ffee", "--adapter-type", "lsilogic", y)
	if testimg.FileSHA256(t, x) != testimg.FileSHA256(t, y) {
		t.Fatal("two conversions with the same --cid differ")
	}
	desc := testimg.Run(t, "head", "-c", "2048", x)
	if !strings.Contains(desc, "CID=00c0ffee") || !strings.Contains(desc, `ddb.adapterType = "lsilogic"`) {
		t.Fatalf("embedded descriptor lacks the CID or adapter type:\n%s", desc)
	}
}

// TestConvertOddSize converts a raw disk whose size is not a whole number
// of clusters or grains, with data in its last sector and a hole before.
func TestConvertOddSize(t *testing.T) {
	testimg.Need(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "odd.raw")
	const size = 5<<20 + 3*512
	b := make([]byte, size)
	for i := range b[:70000] {
		b[i] = byte(i*7 + i>>9)
	}
	copy(b[size-600:], strings.Repeat("end of disk ", 50))
	if err := os.WriteFile(raw, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testimg.Run(t, "fallocate", "--punch-hole", "--offset", "1048576", "--length", "2097152", raw)
	for _, to := range []string{"raw", "qcow2", "vmdk:streamOptimized", "vmdk:twoGbMaxExtentFlat"} {
		format, _, _ := strings.Cut(to, ":")
		out := filepath.Join(dir, "out-"+format+"-"+strings.TrimPrefix(to, format+":")+".img")
		ok(t, "convert", raw, "-O", to, out)
		testimg.Run(t, "qemu-img", "compare", "-q", "-f", format, "-F", "raw", out, raw)
		if format == "qcow2" {
			testimg.Run(t, "qemu-img", "check", "-q", "-f", format, out)
		}
	}
}
