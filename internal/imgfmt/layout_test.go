package imgfmt

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestStructSizes checks each on-disk struct against the size its
// specification gives.
func TestStructSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want int
	}{
		{"qcow2 header (v3, header_length 112)", qcow2Header{}, 112},
		{"VMDK SparseExtentHeader", vmdkHeader{}, 512},
		{"VDI pre-header + header 1.1", vdiHeader{}, 72 + 400},
		{"VHD footer", vhdFooter{}, 512},
		{"VHD dynamic header", vhdDynamicHeader{}, 1024},
		{"ISO primary volume descriptor", isoPrimaryVD{}, 2048},
		{"El Torito boot record", isoBootRecordVD{}, 2048},
		{"ISO terminator", isoTerminatorVD{}, 2048},
		{"ISO directory record", isoDirRecord{}, 34},
		{"ISO path table record", isoPathTableRecord{}, 10},
		{"El Torito validation entry", eltoritoValidationEntry{}, 32},
		{"El Torito default entry", eltoritoDefaultEntry{}, 32},
	} {
		if got := binary.Size(c.v); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, got, c.want)
		}
	}
}

// TestFieldOffsets encodes structs with marker values and checks that
// they land at the byte offsets the specifications give.
func TestFieldOffsets(t *testing.T) {
	be32 := func(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }
	be64 := func(b []byte, off int) uint64 { return binary.BigEndian.Uint64(b[off:]) }
	le32 := func(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	le64 := func(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	check := func(what string, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %#x, want %#x", what, got, want)
		}
	}

	q := (&qcow2Header{ClusterBits: 9, Size: 0x1122, L1TableOffset: 0x3344, RefcountTableOffset: 0x5566,
		RefcountOrder: 4, HeaderLength: 112}).encode()
	// docs/interop/qcow2.txt byte ranges.
	check("qcow2 cluster_bits@20", uint64(be32(q, 20)), 9)
	check("qcow2 size@24", be64(q, 24), 0x1122)
	check("qcow2 l1_table_offset@40", be64(q, 40), 0x3344)
	check("qcow2 refcount_table_offset@48", be64(q, 48), 0x5566)
	check("qcow2 refcount_order@96", uint64(be32(q, 96)), 4)
	check("qcow2 header_length@100", uint64(be32(q, 100)), 112)

	v := (&vmdkHeader{Capacity: 0x77, GrainSize: 8, NumGTEsPerGT: 512, GDOffset: 0x99, OverHead: 0xAA,
		SingleEndLineChar: '\n', DoubleEndLineChar2: '\n'}).encode()
	check("vmdk capacity@12", le64(v, 12), 0x77)
	check("vmdk grainSize@20", le64(v, 20), 8)
	check("vmdk numGTEsPerGT@44", uint64(le32(v, 44)), 512)
	check("vmdk gdOffset@56", le64(v, 56), 0x99)
	check("vmdk overHead@64", le64(v, 64), 0xAA)
	check("vmdk singleEndLineChar@73", uint64(v[73]), '\n')
	check("vmdk doubleEndLineChar2@76", uint64(v[76]), '\n')

	d := (&vdiHeader{OffsetBlocks: 0x200, OffsetData: 0x400, LegacyGeometry: vdiGeometry{SectorSize: 512},
		DiskSize: 0x1234, BlockSize: 1 << 20, Blocks: 3, BlocksAllocated: 2, UUIDCreate: [16]byte{0xEE}}).encode()
	check("vdi offset_bmap@340", uint64(le32(d, 340)), 0x200)
	check("vdi offset_data@344", uint64(le32(d, 344)), 0x400)
	check("vdi sector_size@360", uint64(le32(d, 360)), 512)
	check("vdi disk_size@368", le64(d, 368), 0x1234)
	check("vdi block_size@376", uint64(le32(d, 376)), 1<<20)
	check("vdi blocks_in_image@384", uint64(le32(d, 384)), 3)
	check("vdi blocks_allocated@388", uint64(le32(d, 388)), 2)
	check("vdi uuid_image@392", uint64(d[392]), 0xEE)

	f := vhdFooter{DataOffset: 0x200, CurrentSize: 0x8800, Cylinders: 1, Heads: 4, SectorsPerTrack: 17, DiskType: 3}.encode()
	check("vhd data offset@16", be64(f, 16), 0x200)
	check("vhd current size@48", be64(f, 48), 0x8800)
	check("vhd geometry@56", uint64(be32(f, 56)), 0x00010411)
	check("vhd disk type@60", uint64(be32(f, 60)), 3)
	h := vhdDynamicHeader{TableOffset: 0x600, MaxTableEntries: 9, BlockSize: 4096}.encode()
	check("vhd table offset@16", be64(h, 16), 0x600)
	check("vhd max table entries@28", uint64(be32(h, 28)), 9)
	check("vhd block size@32", uint64(be32(h, 32)), 4096)

	pvd := encodeLE(&isoPrimaryVD{VolumeSpaceSize: both32(743), RootDirectory: isoDirRecord{Length: 34}, FileStructureVersion: 1})
	check("pvd volume space size@80 LE", uint64(le32(pvd, 80)), 743)
	check("pvd volume space size@84 BE", uint64(be32(pvd, 84)), 743)
	check("pvd root record@156", uint64(pvd[156]), 34)
	check("pvd file structure version@881", uint64(pvd[881]), 1)
	br := isoBootRecordVD{}
	binary.LittleEndian.PutUint32(br.BootCatalog[:], 22)
	check("boot record catalog pointer@71", uint64(le32(encodeLE(&br), 71)), 22)
	e := encodeLE(&eltoritoDefaultEntry{BootIndicator: 0x88, MediaType: 2, SectorCount: 1, LoadRBA: 23})
	check("boot entry sector count@6", uint64(binary.LittleEndian.Uint16(e[6:])), 1)
	check("boot entry load RBA@8", uint64(le32(e, 8)), 23)
}

// TestChecksums checks the checksum rules as the specifications state
// them: VHD, the byte sum plus the checksum is all ones; El Torito, the
// 16-bit words of the validation entry sum to zero.
func TestChecksums(t *testing.T) {
	f := vhdFooter{CurrentSize: 12345, UniqueID: [16]byte{1, 2, 3}}.encode()
	var sum uint32
	for i, c := range f {
		if i < 64 || i >= 68 {
			sum += uint32(c)
		}
	}
	if got := binary.BigEndian.Uint32(f[64:]); got+sum != 0xFFFFFFFF {
		t.Errorf("VHD footer checksum %#x with byte sum %#x", got, sum)
	}
	v := eltoritoValidationEntry{HeaderID: 1, IDString: [24]byte{'v', 'm'}, Key: [2]byte{0x55, 0xAA}}.encode()
	var words uint16
	for i := 0; i < len(v); i += 2 {
		words += binary.LittleEndian.Uint16(v[i:])
	}
	if words != 0 {
		t.Errorf("El Torito validation entry words sum to %#x", words)
	}
}

// TestVHDGeometry checks values worked out by hand from the
// specification's CHS algorithm.
func TestVHDGeometry(t *testing.T) {
	for _, c := range []struct{ sectors, c, h, s int64 }{
		{1, 0, 4, 17},
		{68, 1, 4, 17},
		{1 << 21, 2080, 16, 63}, // 1 GiB: 4 heads at 17 spt would exceed 1024 cyl*heads
		{65535 * 16 * 255, 65535, 16, 255},
		{1 << 40, 65535, 16, 255}, // clamped
	} {
		cc, hh, ss := vhdGeometry(c.sectors)
		if cc != c.c || hh != c.h || ss != c.s {
			t.Errorf("%d sectors: got %d/%d/%d, want %d/%d/%d", c.sectors, cc, hh, ss, c.c, c.h, c.s)
		}
	}
	if n, err := VHDDiskSize(1); err != nil || n != 68*512 {
		t.Errorf("VHDDiskSize(1) = %d, %v; want 34816", n, err)
	}
}

func TestVolumeTime(t *testing.T) {
	tm := time.Date(2024, 3, 5, 6, 7, 8, 910_000_000, time.UTC)
	v := volumeTime(tm)
	if string(v[:16]) != "2024030506070891" || v[16] != 0 {
		t.Errorf("volume time %q", v[:])
	}
	if d := dirTime(tm); d != (isoDirTime{124, 3, 5, 6, 7, 8, 0}) {
		t.Errorf("dir time %v", d)
	}
}
