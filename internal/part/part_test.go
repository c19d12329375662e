package part

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// need skips the test when a tool is missing, naming its Debian package.
func need(t testing.TB, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not found: apt-get install -y --no-install-recommends %s", tool, pkg)
	}
}

func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out.String(), errb.String())
	}
	return out.String()
}

// sparseDisk creates a sparse file of the given size in a temp dir.
func sparseDisk(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// sfdiskScript applies an sfdisk script; "%s" in it is replaced by the image path.
func sfdiskScript(t testing.TB, img, script string, extra ...string) {
	t.Helper()
	need(t, "sfdisk", "fdisk")
	args := append([]string{"-q", "--no-reread", "--no-tell-kernel"}, extra...)
	run(t, strings.ReplaceAll(script, "%s", img), "sfdisk", append(args, img)...)
}

type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Attrs    string `json:"attrs"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func openImage(t testing.TB, img string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

func readImage(t testing.TB, img string) *Table {
	t.Helper()
	f, size := openImage(t, img)
	tab, err := Read(f, size)
	if err != nil {
		t.Fatalf("Read(%s): %v", filepath.Base(img), err)
	}
	return tab
}

// partxUUIDs maps partition number to UUID as util-linux partx reports it.
func partxUUIDs(t testing.TB, img string) map[int]string {
	need(t, "partx", "util-linux")
	out := run(t, "", "partx", "--show", "--noheadings", "-o", "NR,UUID", img)
	m := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		m[n] = f[1]
	}
	return m
}

// sfdiskTypeNames maps the type column of sfdisk -l to partition numbers.
func sfdiskTypeNames(t testing.TB, img string) map[int]string {
	out := run(t, "", "sfdisk", "-l", "-o", "Device,Type", img)
	m := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, img) {
			continue
		}
		rest := strings.TrimPrefix(line, img)
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			continue
		}
		m[n] = strings.TrimSpace(rest[i:])
	}
	return m
}

// compareWithSfdisk checks every field of tab against sfdisk --json,
// partx (PARTUUIDs) and sfdisk -l (type names).
func compareWithSfdisk(t *testing.T, img string, tab *Table) {
	t.Helper()
	var js sfdiskJSON
	if err := json.Unmarshal([]byte(run(t, "", "sfdisk", "--json", img)), &js); err != nil {
		t.Fatal(err)
	}
	pt := js.PartitionTable
	wantScheme := map[string]Scheme{"dos": SchemeMBR, "gpt": SchemeGPT}[pt.Label]
	if tab.Scheme != wantScheme {
		t.Fatalf("scheme %q, sfdisk says %q", tab.Scheme, pt.Label)
	}
	if tab.DiskID != pt.ID {
		t.Errorf("disk id %q, sfdisk %q", tab.DiskID, pt.ID)
	}
	if tab.SectorSize != pt.SectorSize {
		t.Errorf("sector size %d, sfdisk %d", tab.SectorSize, pt.SectorSize)
	}
	if len(tab.Partitions) != len(pt.Partitions) {
		t.Fatalf("%d partitions, sfdisk lists %d:\n%+v", len(tab.Partitions), len(pt.Partitions), tab.Partitions)
	}
	uuids := partxUUIDs(t, img)
	names := sfdiskTypeNames(t, img)
	ss := int64(pt.SectorSize)
	byNum := map[int]Partition{}
	for _, p := range tab.Partitions {
		byNum[p.Number] = p
	}
	for _, want := range pt.Partitions {
		num, err := strconv.Atoi(strings.TrimPrefix(want.Node, img))
		if err != nil {
			t.Fatalf("node %q", want.Node)
		}
		got, ok := byNum[num]
		if !ok {
			t.Errorf("partition %d missing", num)
			continue
		}
		if got.Start != want.Start*ss || got.Size != want.Size*ss {
			t.Errorf("p%d: start/size %d/%d, sfdisk %d/%d", num, got.Start, got.Size, want.Start*ss, want.Size*ss)
		}
		if got.Type != names[num] {
			t.Errorf("p%d: type name %q, sfdisk -l %q", num, got.Type, names[num])
		}
		if !strings.EqualFold(got.UUID, uuids[num]) {
			t.Errorf("p%d: uuid %q, partx %q", num, got.UUID, uuids[num])
		}
		switch tab.Scheme {
		case SchemeMBR:
			if fmt.Sprintf("%x", got.MBRType) != want.Type {
				t.Errorf("p%d: type %#x, sfdisk %s", num, got.MBRType, want.Type)
			}
			if got.Bootable != want.Bootable {
				t.Errorf("p%d: bootable %v, sfdisk %v", num, got.Bootable, want.Bootable)
			}
			if got.Extended != isExtendedType(got.MBRType) || got.Logical != (num > 4) {
				t.Errorf("p%d: extended=%v logical=%v", num, got.Extended, got.Logical)
			}
			if got.TypeGUID != "" || got.Name != "" {
				t.Errorf("p%d: GPT fields set on MBR: %+v", num, got)
			}
		case SchemeGPT:
			if got.TypeGUID != want.Type || got.UUID != want.UUID || got.Name != want.Name {
				t.Errorf("p%d: type/uuid/name %s/%s/%q, sfdisk %s/%s/%q", num,
					got.TypeGUID, got.UUID, got.Name, want.Type, want.UUID, want.Name)
			}
			if got.Bootable != strings.Contains(want.Attrs, "LegacyBIOSBootable") {
				t.Errorf("p%d: bootable %v, sfdisk attrs %q", num, got.Bootable, want.Attrs)
			}
			if got.MBRType != 0 || got.Extended || got.Logical {
				t.Errorf("p%d: MBR fields set on GPT: %+v", num, got)
			}
		}
	}
}

func TestMBRPrimaries(t *testing.T) {
	img := sparseDisk(t, "disk.img", 256<<20)
	sfdiskScript(t, img, `label: dos
label-id: 0x1234abcd
start=2048, size=40960, type=83
start=43008, size=20480, type=82, bootable
start=63488, size=65536, type=c
start=131072, size=393216, type=7
`)
	tab := readImage(t, img)
	compareWithSfdisk(t, img, tab)
	if len(tab.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", tab.Warnings)
	}
}

// esxiScript is the ESXi flash layout: extended in slot 1, FAT16 in slot
// 4, logicals 5-7 with gaps between them.
const esxiScript = `label: dos
label-id: 0xdeadbeef
%s1 : start=2048, size=4192256, type=%s
%s4 : start=4194304, size=8192, type=6, bootable
%s5 : start=4096, size=500000, type=6
%s6 : start=1048576, size=204800, type=fc
%s7 : start=2097152, size=1000000, type=83
`

func esxiDisk(t testing.TB, extType string) string {
	img := sparseDisk(t, "esxi.img", 3<<30)
	s := strings.Replace(esxiScript, "type=%s", "type="+extType, 1)
	sfdiskScript(t, img, s)
	return img
}

func TestMBRExtendedESXiLayout(t *testing.T) {
	for _, ext := range []string{"5", "f", "85"} {
		t.Run("type"+ext, func(t *testing.T) {
			img := esxiDisk(t, ext)
			tab := readImage(t, img)
			compareWithSfdisk(t, img, tab)
			if len(tab.Warnings) != 0 {
				t.Errorf("unexpected warnings: %q", tab.Warnings)
			}
			var nums []int
			for _, p := range tab.Partitions {
				nums = append(nums, p.Number)
			}
			if fmt.Sprint(nums) != "[1 4 5 6 7]" {
				t.Errorf("numbers %v", nums)
			}
		})
	}
}

func TestGPT(t *testing.T) {
	need(t, "sgdisk", "gdisk")
	img := sparseDisk(t, "gpt.img", 1<<30)
	run(t, "", "sgdisk",
		"-n1:2048:+100M", "-t1:EF00", "-c1:EFI system partition",
		"-n2:0:+300M", "-t2:8300", "-c2:root fs ünïcødé", "-A2:set:2",
		"-n3:0:+64M", "-t3:8200", "-c3:swap",
		"-n5:0:+100M", "-t5:FB00",
		"-n7:0:+1M", "-t7:EF02", "-c7:a 36-character name, the GPT maximum",
		img)
	tab := readImage(t, img)
	compareWithSfdisk(t, img, tab)
	if len(tab.Warnings) != 0 {
		t.Errorf("unexpected warnings: %q", tab.Warnings)
	}
	if p := tab.Partitions[0]; p.Type != "EFI System" || p.Number != 1 {
		t.Errorf("first partition %+v", p)
	}
}

func TestGPT4096ByteSectors(t *testing.T) {
	need(t, "fdisk", "fdisk")
	img := sparseDisk(t, "gpt4k.img", 64<<20)
	// sfdisk 2.38 has no --sector-size; fdisk -b does.
	run(t, "g\nn\n1\n256\n+8M\nn\n2\n\n+4M\nt\n2\n1\nw\n", "fdisk", "-b", "4096", img)
	tab := readImage(t, img)
	if tab.Scheme != SchemeGPT || tab.SectorSize != 4096 {
		t.Fatalf("scheme %q sector size %d", tab.Scheme, tab.SectorSize)
	}
	out := run(t, "", "fdisk", "-b", "4096", "-l", "-o", "Device,Start,Sectors,Type-UUID,UUID", img)
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, img) {
			rows = append(rows, strings.Fields(strings.TrimPrefix(line, img)))
		} else if id, ok := strings.CutPrefix(line, "Disk identifier: "); ok && id != tab.DiskID {
			t.Errorf("disk id %s, fdisk %s", tab.DiskID, id)
		}
	}
	if len(rows) != 2 || len(tab.Partitions) != 2 {
		t.Fatalf("fdisk rows %q, ours %+v", rows, tab.Partitions)
	}
	for i, r := range rows {
		p := tab.Partitions[i]
		start, _ := strconv.ParseInt(r[1], 10, 64)
		n, _ := strconv.ParseInt(r[2], 10, 64)
		if r[0] != strconv.Itoa(p.Number) || p.Start != start*4096 || p.Size != n*4096 || p.TypeGUID != r[3] || p.UUID != r[4] {
			t.Errorf("ours %+v, fdisk %q", p, r)
		}
	}
}

func TestHybridMBRReadsGPT(t *testing.T) {
	need(t, "sgdisk", "gdisk")
	img := sparseDisk(t, "hybrid.img", 64<<20)
	run(t, "", "sgdisk", "-n1:2048:+8M", "-t1:0700", "-n2:0:+8M", "-t2:8300", img)
	run(t, "", "sgdisk", "-h1", img) // hybrid MBR: partition 1 mirrored, 0xEE second
	tab := readImage(t, img)
	compareWithSfdisk(t, img, tab)
}

func TestSchemeNone(t *testing.T) {
	zero := sparseDisk(t, "zero.img", 1<<20)
	if tab := readImage(t, zero); tab.Scheme != SchemeNone || len(tab.Partitions) != 0 {
		t.Errorf("zero disk: %+v", tab)
	}

	need(t, "mkfs.vfat", "dosfstools")
	fat := sparseDisk(t, "fat.img", 16<<20)
	run(t, "", "mkfs.vfat", fat)
	if tab := readImage(t, fat); tab.Scheme != SchemeNone {
		t.Errorf("whole-disk FAT: %+v", tab)
	}
	// blkid agrees that this is no partition table.
	if _, err := exec.LookPath("blkid"); err == nil {
		out, _ := exec.Command("blkid", "-p", "-o", "export", fat).Output()
		if strings.Contains(string(out), "PTTYPE") {
			t.Errorf("blkid sees a partition table on the FAT image: %s", out)
		}
	}

	need(t, "mkfs.ext4", "e2fsprogs")
	ext := sparseDisk(t, "ext.img", 16<<20)
	run(t, "", "mkfs.ext4", "-q", "-F", ext)
	// Make sector 0 look like an MBR with one partition: the ext superblock must still win.
	f, err := os.OpenFile(ext, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]byte, 512)
	s[510], s[511] = 0x55, 0xaa
	s[446+4] = 0x83
	binary.LittleEndian.PutUint32(s[446+8:], 2048)
	binary.LittleEndian.PutUint32(s[446+12:], 1000)
	f.WriteAt(s, 0)
	f.Close()
	if tab := readImage(t, ext); tab.Scheme != SchemeNone {
		t.Errorf("ext at 0 with an MBR-looking sector 0: %+v", tab)
	}
}

func TestPartitionReader(t *testing.T) {
	img := sparseDisk(t, "disk.img", 8<<20)
	sfdiskScript(t, img, "label: dos\nstart=2048, size=4096, type=83\n")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("first"), 2048*512)
	f.WriteAt([]byte("last!"), (2048+4096)*512-5)
	f.Close()
	tab := readImage(t, img)
	f2, _ := openImage(t, img)
	sr := tab.Partitions[0].Reader(f2)
	buf := make([]byte, 5)
	if _, err := sr.ReadAt(buf, 0); err != nil || string(buf) != "first" {
		t.Errorf("start: %q %v", buf, err)
	}
	if _, err := sr.ReadAt(buf, sr.Size()-5); err != nil || string(buf) != "last!" {
		t.Errorf("end: %q %v", buf, err)
	}
	if n, _ := sr.ReadAt(buf, sr.Size()); n != 0 {
		t.Errorf("read past the partition returned %d bytes", n)
	}
}

// patch writes b at off in the file.
func patch(t testing.TB, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t testing.TB, img string, off int64, n int) []byte {
	t.Helper()
	f, _ := openImage(t, img)
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func hasWarning(tab *Table, sub string) bool {
	for _, w := range tab.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func TestEBRLoop(t *testing.T) {
	img := esxiDisk(t, "f")
	before := readImage(t, img)
	// The EBR of logical 7 (sfdisk puts it 2048 sectors before the data)
	// gets a link back to the first EBR (offset 0 in the extended partition).
	ebr7 := int64(2097152 - 2048)
	link := make([]byte, 16)
	link[4] = 0x05
	binary.LittleEndian.PutUint32(link[12:], 100)
	patch(t, img, ebr7*512+446+16, link)
	tab := readImage(t, img)
	if !hasWarning(tab, "loops back") {
		t.Errorf("no loop warning: %q", tab.Warnings)
	}
	if len(tab.Partitions) != len(before.Partitions) {
		t.Errorf("got %d partitions, want the %d found before the loop", len(tab.Partitions), len(before.Partitions))
	}
}

func TestEBRPastEndOfDisk(t *testing.T) {
	img := esxiDisk(t, "5")
	ebr6 := int64(1048576 - 2048)
	link := make([]byte, 16)
	link[4] = 0x05
	binary.LittleEndian.PutUint32(link[8:], 0xfffff000)
	binary.LittleEndian.PutUint32(link[12:], 100)
	patch(t, img, ebr6*512+446+16, link)
	tab := readImage(t, img)
	if !hasWarning(tab, "beyond the end of the disk") {
		t.Errorf("no warning: %q", tab.Warnings)
	}
	var nums []int
	for _, p := range tab.Partitions {
		nums = append(nums, p.Number)
	}
	if fmt.Sprint(nums) != "[1 4 5 6]" {
		t.Errorf("partitions %v, want [1 4 5 6]", nums)
	}
}

// sparseReader is an in-memory disk holding only some sectors.
type sparseReader struct {
	size    int64
	sectors map[int64][]byte
}

func (s *sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	n := 0
	for n < len(p) && off+int64(n) < s.size {
		lba, in := (off+int64(n))/512, (off+int64(n))%512
		chunk := p[n:min(len(p), n+int(512-in))]
		if sec, ok := s.sectors[lba]; ok {
			copy(chunk, sec[in:])
		} else {
			clear(chunk)
		}
		n += len(chunk)
	}
	if n < len(p) {
		return n, fmt.Errorf("read past end: EOF")
	}
	return n, nil
}

func TestEBRChain10000Long(t *testing.T) {
	d := &sparseReader{size: 1 << 40, sectors: map[int64][]byte{}}
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xaa
	e := mbr[446:]
	e[4] = 0x0f
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], 10001*16)
	d.sectors[0] = mbr
	for i := 0; i < 10000; i++ {
		s := make([]byte, 512)
		s[510], s[511] = 0x55, 0xaa
		s[446+4] = 0x83
		binary.LittleEndian.PutUint32(s[446+8:], 1)
		binary.LittleEndian.PutUint32(s[446+12:], 15)
		s[446+16+4] = 0x05
		binary.LittleEndian.PutUint32(s[446+16+8:], uint32((i+1)*16))
		binary.LittleEndian.PutUint32(s[446+16+12:], 16)
		d.sectors[2048+int64(i)*16] = s
	}
	tab, err := Read(d, d.size)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Partitions) != 1+MaxLogical || !hasWarning(tab, "more than") {
		t.Errorf("%d partitions, warnings %q", len(tab.Partitions), tab.Warnings)
	}
	last := tab.Partitions[len(tab.Partitions)-1]
	if last.Number != 4+MaxLogical || last.Start != (2048+int64(MaxLogical-1)*16+1)*512 {
		t.Errorf("last logical %+v", last)
	}
}

func gptDisk(t testing.TB) string {
	need(t, "sgdisk", "gdisk")
	img := sparseDisk(t, "gpt.img", 64<<20)
	run(t, "", "sgdisk", "-n1:2048:+8M", "-t1:EF00", "-c1:esp", "-n2:0:+16M", "-t2:8300", "-c2:root", img)
	return img
}

func TestGPTPrimaryHeaderCRCBroken(t *testing.T) {
	img := gptDisk(t)
	want := readImage(t, img)
	patch(t, img, 512+56, []byte{0x42}) // disk GUID byte: header CRC now wrong
	tab := readImage(t, img)
	if !hasWarning(tab, "primary GPT is damaged") || !hasWarning(tab, "header CRC mismatch") {
		t.Errorf("warnings %q", tab.Warnings)
	}
	if fmt.Sprint(tab.Partitions) != fmt.Sprint(want.Partitions) || tab.DiskID != want.DiskID {
		t.Errorf("backup gave %+v, want %+v", tab, want)
	}
}

func TestGPTPrimaryEntriesCRCBroken(t *testing.T) {
	img := gptDisk(t)
	want := readImage(t, img)
	patch(t, img, 2*512+56, []byte{'X'}) // first entry's name
	tab := readImage(t, img)
	if !hasWarning(tab, "entry array CRC mismatch") {
		t.Errorf("warnings %q", tab.Warnings)
	}
	if fmt.Sprint(tab.Partitions) != fmt.Sprint(want.Partitions) {
		t.Errorf("got %+v, want %+v", tab.Partitions, want.Partitions)
	}
}

func TestGPTBackupBrokenIsWarning(t *testing.T) {
	img := gptDisk(t)
	want := readImage(t, img)
	patch(t, img, (64<<20)-512+56, []byte{0x42})
	tab := readImage(t, img)
	if !hasWarning(tab, "backup GPT at LBA") {
		t.Errorf("warnings %q", tab.Warnings)
	}
	if fmt.Sprint(tab.Partitions) != fmt.Sprint(want.Partitions) {
		t.Errorf("got %+v", tab.Partitions)
	}
}

func TestGPTBothBroken(t *testing.T) {
	img := gptDisk(t)
	patch(t, img, 512+56, []byte{0x42})
	patch(t, img, (64<<20)-512+56, []byte{0x42})
	f, size := openImage(t, img)
	_, err := Read(f, size)
	if err == nil || !strings.Contains(err.Error(), "primary header at LBA 1: header CRC mismatch") ||
		!strings.Contains(err.Error(), "backup header at LBA") {
		t.Fatalf("err = %v", err)
	}
}

// setGPTField rewrites a 32-bit header field and recomputes the header CRC.
func setGPTField(t testing.TB, img string, lba int64, off int, v uint32) {
	h := readAt(t, img, lba*512, 512)
	binary.LittleEndian.PutUint32(h[off:], v)
	size := binary.LittleEndian.Uint32(h[12:])
	clear(h[16:20])
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:size]))
	patch(t, img, lba*512, h)
}

func TestGPTHugeEntryCount(t *testing.T) {
	img := gptDisk(t)
	last := int64(64<<20)/512 - 1
	setGPTField(t, img, 1, 80, 0xffffffff)
	tab := readImage(t, img)
	if !hasWarning(tab, "exceeds") {
		t.Errorf("primary with 2^32-1 entries: warnings %q", tab.Warnings)
	}
	setGPTField(t, img, last, 84, 1<<31) // backup: absurd entry size
	f, size := openImage(t, img)
	_, err := Read(f, size)
	if err == nil || !strings.Contains(err.Error(), "exceeds") || !strings.Contains(err.Error(), "entry size") {
		t.Fatalf("err = %v", err)
	}
}

func TestTruncatedDisks(t *testing.T) {
	img := gptDisk(t)
	want := readImage(t, img)
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	tab := readImage(t, img)
	if !hasWarning(tab, "backup GPT header LBA") || !hasWarning(tab, "partition 2") {
		t.Errorf("warnings %q", tab.Warnings)
	}
	if fmt.Sprint(tab.Partitions) != fmt.Sprint(want.Partitions) {
		t.Errorf("got %+v", tab.Partitions)
	}
	for _, n := range []int64{1000, 2048} {
		os.Truncate(img, n)
		f, size := openImage(t, img)
		if _, err := Read(f, size); err == nil || !strings.Contains(err.Error(), "no GPT header") {
			t.Errorf("truncated to %d: err = %v", n, err)
		}
	}
	os.Truncate(img, 100)
	f, size := openImage(t, img)
	if _, err := Read(f, size); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("100 bytes: err = %v", err)
	}
	// A size larger than what the reader holds: read errors are errors.
	mbr := esxiDisk(t, "5")
	f2, _ := openImage(t, mbr)
	os.Truncate(mbr, 2<<20) // EBRs now lie past the real end of the file
	tab2, err := Read(f2, 3<<30)
	if err == nil {
		t.Errorf("reading EBRs past the end of a shorter file succeeded: %+v", tab2)
	}
}

func TestTypeNamesMatchUtilLinux(t *testing.T) {
	need(t, "sfdisk", "fdisk")
	list := func(label string) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(run(t, "", "sfdisk", "-T", "--label", label), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] == "Id" || f[0] == "Type" {
				continue
			}
			m[strings.ToUpper(f[0])] = strings.Join(f[1:], " ")
		}
		return m
	}
	dos := list("dos")
	for code, name := range mbrTypeNames {
		if got := dos[strings.ToUpper(strconv.FormatUint(uint64(code), 16))]; got != name {
			t.Errorf("MBR %#x: ours %q, sfdisk %q", code, name, got)
		}
	}
	gpt := list("gpt")
	for guid, name := range gptTypeNames {
		if got := gpt[guid]; got != name {
			t.Errorf("GPT %s: ours %q, sfdisk %q", guid, name, got)
		}
	}
}
