package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// appliance is the disk the stack tests read in every VMDK layout: an MBR
// with a FAT partition in slot 1 that ends just short of 2 GiB, an extended
// partition, a logical ext3 partition 5 (the standard tree) that straddles
// the 2 GiB split-extent boundary, and an empty logical partition 6.
// exactTimes are restored into the image with debugfs, so the copy is held
// to nanoseconds and post-2038 dates on them.
var exactTimes = []string{"times/ns", "times/y2040", "times/y1960", "times/dir", "files/text"}

type appliance struct {
	dir, raw, tree, ext string
	starts              []int64
}

var (
	applOnce sync.Once
	appl     *appliance
	applErr  string
)

func buildAppliance(t *testing.T) *appliance {
	t.Helper()
	testimg.Need(t, "mke2fs", "sfdisk", "qemu-img", "mkfs.vfat", "mcopy", "python3")
	applOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vmroot-appl-")
		if err != nil {
			applErr = err.Error()
			return
		}
		a := &appliance{dir: dir, tree: testimg.Tree(t)}
		fat := filepath.Join(dir, "fat.img")
		testimg.Run(t, "mkfs.vfat", "-C", "-n", "BOOT", fat, "8192")
		os.WriteFile(filepath.Join(dir, "boot.cfg"), []byte("kernel=/b.b00\nmodules=/k.b00\n"), 0o644)
		testimg.Run(t, "mcopy", "-i", fat, filepath.Join(dir, "boot.cfg"), "::/BOOT.CFG")
		// 256-byte inodes keep nanosecond times, so the copy can be held to them.
		ext := testimg.Ext(t, dir, a.tree, "ext3", 96, "-b", "4096", "-I", "256")
		testimg.RestoreTimes(t, ext, a.tree, exactTimes...)
		a.ext = ext
		a.raw = testimg.Disk(t, dir, "dos", 4200,
			testimg.Part{Type: "c", SizeMiB: 2040, Bootable: true, Content: fat},
			testimg.Part{Type: "5"},
			testimg.Part{Type: "83", SizeMiB: 96, Content: ext},
			testimg.Part{Type: "83", SizeMiB: 16},
		)
		a.starts = testimg.SfdiskStarts(t, a.raw)
		appl = a
	})
	if appl == nil {
		t.Fatalf("building the test appliance failed: %s", applErr)
	}
	return appl
}

// variants converts the appliance into every VMDK layout vmroot reads.
func (a *appliance) variants(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{"raw": a.raw}
	for _, sub := range []string{"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized"} {
		d := filepath.Join(a.dir, sub)
		os.MkdirAll(d, 0o755)
		p := filepath.Join(d, "appliance.vmdk")
		if _, err := os.Stat(p); err != nil {
			testimg.Convert(t, a.raw, p, "vmdk", "subformat="+sub)
		}
		out[sub] = p
	}
	p := filepath.Join(a.dir, "vmware-stream.vmdk")
	if _, err := os.Stat(p); err != nil {
		testimg.VMDKStream(t, a.raw, p)
	}
	out["streamOptimized-vmware"] = p
	out["delta"] = a.delta(t, out["twoGbMaxExtentFlat"])
	return out
}

// delta makes a delta disk over base whose own grains hold the ext
// partition (written from the filesystem image with qemu-io), while the
// rest of the disk still comes from the parent: reads cross the chain.
func (a *appliance) delta(t *testing.T, base string) string {
	t.Helper()
	testimg.Need(t, "qemu-io")
	d := filepath.Join(a.dir, "delta")
	p := filepath.Join(d, "child.vmdk")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	os.MkdirAll(d, 0o755)
	testimg.Run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-b", base, "-F", "vmdk", p)
	testimg.Run(t, "qemu-io", "-f", "vmdk", "-c",
		fmt.Sprintf("write -s %s %d %d", a.ext, a.starts[2]*512, 96<<20), p)
	return p
}

func TestInfoAgreesWithQemuImgAndSfdisk(t *testing.T) {
	a := buildAppliance(t)
	var sf struct {
		PartitionTable struct {
			ID         string `json:"id"`
			Partitions []struct {
				Node     string `json:"node"`
				Start    int64  `json:"start"`
				Size     int64  `json:"size"`
				Type     string `json:"type"`
				Bootable bool   `json:"bootable"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(testimg.Run(t, "sfdisk", "--json", a.raw)), &sf); err != nil {
		t.Fatal(err)
	}
	for name, img := range a.variants(t) {
		t.Run(name, func(t *testing.T) {
			var got infoJSON
			if err := json.Unmarshal([]byte(ok(t, "info", "--json", img)), &got); err != nil {
				t.Fatal(err)
			}
			var q struct {
				VirtualSize    int64 `json:"virtual-size"`
				FormatSpecific struct {
					Data struct {
						CreateType string `json:"create-type"`
						Extents    []struct {
							Filename    string `json:"filename"`
							VirtualSize int64  `json:"virtual-size"`
						} `json:"extents"`
					} `json:"data"`
				} `json:"format-specific"`
			}
			fmtArg := "vmdk"
			if name == "raw" {
				fmtArg = "raw"
			}
			if err := json.Unmarshal([]byte(testimg.Run(t, "qemu-img", "info", "-f", fmtArg, "--output=json", img)), &q); err != nil {
				t.Fatal(err)
			}
			if got.VirtualSize != q.VirtualSize {
				t.Errorf("virtual size %d, qemu-img says %d", got.VirtualSize, q.VirtualSize)
			}
			if name != "raw" {
				if got.VMDK == nil {
					t.Fatal("no vmdk section")
				}
				if (name == "delta") != (got.VMDK.Parent != nil) {
					t.Errorf("parent chain %+v", got.VMDK.Parent)
				}
				if got.VMDK.CreateType != q.FormatSpecific.Data.CreateType {
					t.Errorf("createType %q, qemu-img says %q", got.VMDK.CreateType, q.FormatSpecific.Data.CreateType)
				}
				qe := q.FormatSpecific.Data.Extents
				if len(got.VMDK.Extents) != len(qe) {
					t.Fatalf("%d extents, qemu-img says %d", len(got.VMDK.Extents), len(qe))
				}
				for i := range qe {
					if filepath.Base(got.VMDK.Extents[i].Filename) != filepath.Base(qe[i].Filename) || got.VMDK.Extents[i].Size != qe[i].VirtualSize {
						t.Errorf("extent %d: %s %d, qemu-img says %s %d", i, got.VMDK.Extents[i].Filename, got.VMDK.Extents[i].Size, qe[i].Filename, qe[i].VirtualSize)
					}
				}
			}
			if got.Table == nil || got.Table.Scheme != "mbr" {
				t.Fatalf("partition table %+v, want mbr", got.Table)
			}
			if want := sf.PartitionTable.ID; got.Table.DiskID != want {
				t.Errorf("disk id %s, sfdisk says %s", got.Table.DiskID, want)
			}
			if len(got.Table.Partitions) != len(sf.PartitionTable.Partitions) {
				t.Fatalf("%d partitions, sfdisk says %d", len(got.Table.Partitions), len(sf.PartitionTable.Partitions))
			}
			for i, sp := range sf.PartitionTable.Partitions {
				gp := got.Table.Partitions[i]
				if !strings.HasSuffix(sp.Node, fmt.Sprint(gp.Number)) || gp.Start != sp.Start*512 || gp.Size != sp.Size*512 ||
					gp.TypeCode != "0x"+fmt.Sprintf("%02s", sp.Type) || gp.Bootable != sp.Bootable {
					t.Errorf("partition %d = %+v; sfdisk: %+v", i, gp, sp)
				}
			}
			p5 := got.Table.Partitions[2]
			if p5.Filesystem == nil || p5.Filesystem.Type != "ext3" || p5.Filesystem.Label != "testfs" ||
				p5.Filesystem.UUID != "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" || p5.Filesystem.Size != 96<<20 {
				t.Errorf("partition 5 filesystem %+v", p5.Filesystem)
			}
			if p1 := got.Table.Partitions[0]; p1.Filesystem == nil || p1.Filesystem.Type != "vfat" || p1.Filesystem.Label != "BOOT" {
				t.Errorf("partition 1 filesystem %+v", p1.Filesystem)
			}
		})
	}
}

func TestCopyOutEveryLayout(t *testing.T) {
	a := buildAppliance(t)
	root := os.Geteuid() == 0
	for name, img := range a.variants(t) {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			ok(t, "cp", "-r", img, "/", dest)
			testimg.CompareTrees(t, a.tree, dest, testimg.CompareOpts{Owners: root, Extra: []string{"lost+found"},
				Mke2fsTimes: true, ExactTimes: exactTimes, IgnoreTimes: []string{"."}})
		})
	}
}

func TestExtractMatchesQemuImgConvert(t *testing.T) {
	a := buildAppliance(t)
	for name, img := range a.variants(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// Oracle: qemu-img's own reading of this very file, cut at the partition.
			conv := filepath.Join(dir, "qemu.raw")
			fmtArg := "vmdk"
			if name == "raw" {
				fmtArg = "raw"
			}
			testimg.Run(t, "qemu-img", "convert", "-f", fmtArg, "-O", "raw", img, conv)
			if !testimg.SameBytes(t, conv, a.raw) {
				t.Fatal("qemu-img's conversion differs from the source disk")
			}
			cut := filepath.Join(dir, "cut.raw")
			testimg.Run(t, "dd", "if="+conv, "of="+cut, "bs=512", fmt.Sprintf("skip=%d", a.starts[2]),
				fmt.Sprintf("count=%d", 96<<20/512), "conv=sparse", "status=none")
			out := filepath.Join(dir, "p5.raw")
			ok(t, "extract", "-p", "5", img, "-o", out)
			if !testimg.SameBytes(t, out, cut) {
				t.Errorf("extract -p 5 differs from qemu-img convert cut at the partition")
			}
			whole := filepath.Join(dir, "whole.raw")
			ok(t, "extract", "-p", "0", img, "-o", whole)
			if !testimg.SameBytes(t, whole, conv) {
				t.Errorf("extract -p 0 differs from qemu-img convert -O raw")
			}
			if n := allocatedBytes(t, whole); n > 256<<20 {
				t.Errorf("extract -p 0 of a 4 GiB mostly empty disk allocated %d bytes: not sparse", n)
			}
		})
	}
}

func allocatedBytes(t *testing.T, p string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestCatAndLs(t *testing.T) {
	a := buildAppliance(t)
	img := a.variants(t)["twoGbMaxExtentFlat"]
	for _, p := range []string{"files/size-1M+7", "files/text", "links/dir/text", "names/with space"} {
		want, err := os.ReadFile(filepath.Join(a.tree, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := ok(t, "cat", img, "/"+p); !bytes.Equal([]byte(got), want) {
			t.Errorf("cat %s: %d bytes differ from the source (%d bytes)", p, len(got), len(want))
		}
	}
	// -p picks the FAT partition explicitly.
	if got := ok(t, "cat", "-p", "1", img, "/BOOT.CFG"); got != "kernel=/b.b00\nmodules=/k.b00\n" {
		t.Errorf("cat -p 1 BOOT.CFG = %q", got)
	}
	// ls -R lists every path of a subtree, as find does.
	want := testimg.Run(t, "bash", "-c", "cd "+a.tree+" && find deep -mindepth 1 | sed 's|^|/|' | sort")
	got := ok(t, "ls", "-R", img, "/deep")
	if sortLines(got) != want {
		t.Errorf("ls -R /deep:\n%s\nwant:\n%s", got, want)
	}
	long := ok(t, "ls", "-l", img, "/modes")
	if !strings.Contains(long, "-rwsr-xr-x") {
		t.Errorf("ls -l /modes shows no setuid file:\n%s", long)
	}
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}
