package disk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/part"
	"github.com/vmroot/vmroot/internal/testimg"
)

func write(t *testing.T, tb Table) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(tb.Sectors * 512)
	if err := tb.Write(f); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEBRChain writes three logical partitions and reads them back with
// vmroot's reader and sfdisk.
func TestEBRChain(t *testing.T) {
	tb := Table{Scheme: MBR, Sectors: 65536, DiskID: 0xabcdef01, Partitions: []Partition{
		{Number: 3, Start: 2048, Sectors: 2048, MBRType: 0x0c, Bootable: true},
		{Number: 1, Start: 8192, Sectors: 57344, MBRType: 0x0f},
		{Number: 5, Start: 8193, Sectors: 1000, MBRType: 0x83},
		{Number: 6, Start: 9195, Sectors: 2000, MBRType: 0x06},
		{Number: 7, Start: 20000, Sectors: 45536, MBRType: 0x0b},
	}}
	p := write(t, tb)
	f, _ := os.Open(p)
	defer f.Close()
	got, err := part.Read(f, tb.Sectors*512)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][2]int64{3: {2048, 2048}, 1: {8192, 57344}, 5: {8193, 1000}, 6: {9195, 2000}, 7: {20000, 45536}}
	if len(got.Partitions) != len(want) {
		t.Fatalf("read %d partitions, want %d: %+v", len(got.Partitions), len(want), got.Partitions)
	}
	for _, gp := range got.Partitions {
		w, ok := want[gp.Number]
		if !ok || gp.Start != w[0]*512 || gp.Size != w[1]*512 {
			t.Errorf("partition %d: start %d size %d, want sectors %v", gp.Number, gp.Start, gp.Size, w)
		}
	}
	testimg.Need(t, "sfdisk")
	dump := testimg.Run(t, "sfdisk", "--dump", p)
	for _, l := range []string{"start=        9195, size=        2000, type=6", "start=        2048, size=        2048, type=c, bootable", "start=       20000, size=       45536, type=b"} {
		if !strings.Contains(dump, l) {
			t.Errorf("sfdisk --dump lacks %q:\n%s", l, dump)
		}
	}
}

func TestGPT(t *testing.T) {
	testimg.Need(t, "sgdisk")
	tb := Table{Scheme: GPT, Sectors: 131072, Partitions: []Partition{
		{Number: 2, Start: 4096, Sectors: 2048, GPTType: TypeLinux, Name: "root"},
		{Number: 1, Start: 2048, Sectors: 2048, GPTType: TypeESP, Name: "EFI System"},
	}}
	p := write(t, tb)
	out := testimg.Run(t, "sgdisk", "-v", "-p", p)
	for _, s := range []string{"No problems found", "1            2048            4095   1024.0 KiB  EF00  EFI System", "2            4096            6143   1024.0 KiB  8300  root"} {
		if !strings.Contains(out, s) {
			t.Errorf("sgdisk lacks %q:\n%s", s, out)
		}
	}
	g, _ := ParseGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	if g.String() != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" || g[0] != 0x28 {
		t.Errorf("GUID round trip: %s % x", g, g[:4])
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		tb   Table
		want string
	}{
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 10, Sectors: 100, MBRType: 6}, {Number: 2, Start: 100, Sectors: 10, MBRType: 6}}}, "overlap"},
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 10, Sectors: 1000, MBRType: 6}}}, "does not fit"},
		{Table{Scheme: GPT, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 34, Sectors: 934, GPTType: TypeESP}}}, "does not fit"},
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 5, Start: 10, Sectors: 10, MBRType: 6}}}, "no extended"},
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 10, Sectors: 100, MBRType: 5}, {Number: 5, Start: 10, Sectors: 10, MBRType: 6}}}, "holds its EBR"},
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 10, Sectors: 100, MBRType: 5}, {Number: 6, Start: 20, Sectors: 10, MBRType: 6}}}, "partition 5 is missing"},
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 10, Sectors: 100, MBRType: 5}, {Number: 2, Start: 200, Sectors: 100, MBRType: 0x0f}}}, "at most one extended"},
		{Table{Scheme: MBR, Sectors: 1000, Partitions: []Partition{{Number: 1, Start: 10, Sectors: 100, MBRType: 5}, {Number: 5, Start: 50, Sectors: 100, MBRType: 6}}}, "does not fit inside extended"},
	} {
		if err := c.tb.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.tb.Partitions, err, c.want)
		}
	}
}
