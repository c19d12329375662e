package fatiso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func patchFile(t testing.TB, img string, off int64, b []byte) {
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

func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not contain %q", err, s)
		}
	}
}

// fatLayout returns the decoded BPB of an image and the root entry whose
// 8.3 name is short (case-insensitive; "*" suffix: prefix match).
func fatLayout(t testing.TB, img string, short string) (*bpb, dirSlot) {
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBPB(data[:512])
	if err != nil {
		t.Fatal(err)
	}
	var root []byte
	if b.fatBits == 32 {
		f := &fatFS{b: b, fat: decodeFAT(b, data[b.fatOffset:b.fatOffset+b.fatBytes]), t: &tree{r: bytes.NewReader(data)}}
		if root, err = f.dirData(b.rootCluster); err != nil {
			t.Fatal(err)
		}
	} else {
		root = data[b.rootDirOff : b.rootDirOff+b.rootDirBytes]
	}
	for _, s := range decodeDirSlots(root, b.fatBits == 32) {
		name := strings.ToUpper(s.shortName())
		if p, ok := strings.CutSuffix(short, "*"); ok && strings.HasPrefix(name, p) || name == short {
			return b, s
		}
	}
	t.Fatalf("%s not in the root directory", short)
	return nil, dirSlot{}
}

// setFAT16 writes entry c of every FAT copy of a FAT16 volume.
func setFAT16(t testing.TB, img string, b *bpb, c uint32, v uint16) {
	for i := int64(0); i < b.numFATs; i++ {
		patchFile(t, img, b.fatOffset+i*b.fatBytes+int64(c)*2, binary.LittleEndian.AppendUint16(nil, v))
	}
}

func TestFATDirectoryChainLoop(t *testing.T) {
	img, _ := makeFAT(t, 16, 32)
	b, d1 := fatLayout(t, img, "D1")
	setFAT16(t, img, b, d1.cluster, uint16(d1.cluster)) // points at itself: go-diskfs would spin forever
	r, size := openFile(t, img)
	_, err := OpenFAT(r, size)
	wantErr(t, err, `"/"`, "subdirectory \"d1\"", "loops at cluster")
}

func TestFATFileChainLoopIsReadError(t *testing.T) {
	img, _ := makeFAT(t, 16, 32)
	b, big := fatLayout(t, img, "BIG.BIN")
	setFAT16(t, img, b, big.cluster+2, uint16(big.cluster))
	r, size := openFile(t, img)
	fs, err := OpenFAT(r, size)
	if err != nil {
		t.Fatal(err)
	}
	ino := lookupPath(t, fs, "big.bin")
	_, err = fs.ReadAt(ino, make([]byte, 10), 0)
	wantErr(t, err, "big.bin", "loops at cluster")
	// Other files are unaffected.
	if _, err := readAll(fs, lookupPath(t, fs, "hello.txt"), 100); err != nil {
		t.Error(err)
	}
}

func TestFATCrossLinkedDirectory(t *testing.T) {
	img, _ := makeFAT(t, 16, 32)
	b, d1 := fatLayout(t, img, "D1")
	_, ed := fatLayout(t, img, "EMPTYD*")
	// Point "empty dir" at d1's cluster: a directory reachable twice.
	root := b.rootDirOff + int64(ed.index)*32
	patchFile(t, img, root+26, binary.LittleEndian.AppendUint16(nil, uint16(d1.cluster)))
	r, size := openFile(t, img)
	_, err := OpenFAT(r, size)
	wantErr(t, err, "already used by another directory")
}

// TestFATGoDiskfsErrorsComeBack: go-diskfs refuses a FAT32 volume whose
// two FATs differ; its error must come back from OpenFAT.
func TestFATGoDiskfsErrorsComeBack(t *testing.T) {
	img, _ := makeFAT(t, 32, 40)
	b, _ := fatLayout(t, img, "HELLO.TXT")
	patchFile(t, img, b.fatOffset+b.fatBytes+4*100, []byte{0x77, 0x77, 0x77, 0x07})
	r, size := openFile(t, img)
	_, err := OpenFAT(r, size)
	wantErr(t, err, "go-diskfs", "fat tables did not match")
}

func TestFATBadBootSectors(t *testing.T) {
	img, _ := makeFAT(t, 12, 8)
	r, size := openFile(t, img)
	if _, err := OpenFAT(r, size-1<<20); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
	patchFile(t, img, 11, []byte{3, 0}) // 3 bytes per sector
	_, err := OpenFAT(r, size)
	wantErr(t, err, "not a FAT filesystem", "bytes per sector 3")
	head := make([]byte, 512)
	r.ReadAt(head, 0)
	if ProbeFAT(head) {
		t.Error("ProbeFAT accepted 3 bytes per sector")
	}
	if ProbeISO(r) {
		t.Error("ProbeISO accepted a FAT image")
	}
}

func TestProbes(t *testing.T) {
	for _, bits := range []int{12, 16, 32} {
		img, _ := makeFAT(t, bits, 40)
		r, _ := openFile(t, img)
		head := make([]byte, 512)
		r.ReadAt(head, 0)
		if !ProbeFAT(head) {
			t.Errorf("FAT%d not recognised", bits)
		}
	}
	iso := makeISO(t, makeTree(t, false))
	r, _ := openFile(t, iso)
	head := make([]byte, 512)
	r.ReadAt(head, 0)
	if !ProbeISO(r) || ProbeFAT(head) {
		t.Error("ISO probes wrong")
	}
	if ProbeFAT(head[:100]) {
		t.Error("ProbeFAT accepted 100 bytes")
	}
}

func isoPVDField(t testing.TB, img string, off int64, v uint32) {
	patchFile(t, img, 16*2048+off, binary.LittleEndian.AppendUint32(nil, v))
	patchFile(t, img, 16*2048+off+4, binary.BigEndian.AppendUint32(nil, v))
}

func TestISOHugePathTable(t *testing.T) {
	img := makeISO(t, makeTree(t, false), "--norock")
	isoPVDField(t, img, 132, 0xfffffff0)
	r, size := openFile(t, img)
	_, err := OpenISO(r, size)
	wantErr(t, err, "path table of 4294967280 bytes")
}

func TestISOHugeRootDirectory(t *testing.T) {
	img := makeISO(t, makeTree(t, false), "-R")
	isoPVDField(t, img, 156+10, 0x7fffffff)
	r, size := openFile(t, img)
	_, err := OpenISO(r, size)
	wantErr(t, err, "root directory", "directory of 2147483647 bytes")
}

// TestISOContinuationLoop points the root's Rock Ridge continuation area
// at itself. go-diskfs follows CE entries without a bound; the storage's
// read budget must turn that into an error.
func TestISOContinuationLoop(t *testing.T) {
	img := makeISO(t, makeTree(t, false), "-R")
	data, _ := os.ReadFile(img)
	rootLoc := binary.LittleEndian.Uint32(data[16*2048+156+2:])
	dot := data[int64(rootLoc)*2048:]
	// Find the root "." record's CE entry.
	su := dot[34:dot[0]]
	var ceLoc uint32
	ceOff := -1
	for i := 0; i+4 <= len(su) && su[i+2] >= 4; i += int(su[i+2]) {
		if string(su[i:i+2]) == "CE" {
			ceOff, ceLoc = i, binary.LittleEndian.Uint32(su[i+4:])
		}
	}
	if ceOff < 0 {
		t.Skip("xorriso put no CE entry in the root record")
	}
	ce := []byte{'C', 'E', 28, 1}
	for _, v := range []uint32{ceLoc, 0, 28} {
		ce = binary.LittleEndian.AppendUint32(ce, v)
		ce = binary.BigEndian.AppendUint32(ce, v)
	}
	// The root's CE now names a 28-byte area that holds a CE naming itself.
	patchFile(t, img, int64(rootLoc)*2048+34+int64(ceOff), ce)
	patchFile(t, img, int64(ceLoc)*2048, ce)
	r, size := openFile(t, img)
	_, err := OpenISO(r, size)
	wantErr(t, err, "go-diskfs", "more than")
}

func TestISONotAnISO(t *testing.T) {
	img, _ := makeFAT(t, 12, 8)
	r, size := openFile(t, img)
	_, err := OpenISO(r, size)
	wantErr(t, err, "no CD001 identifier")
}

func TestGuardRecoversPanics(t *testing.T) {
	st := newStorage(strings.NewReader("abc"), 3)
	err := st.guard("test", func() error { panic("boom") })
	wantErr(t, err, "test", "boom")
	if _, err := st.Writable(); !errors.Is(err, errReadOnly) {
		t.Errorf("Writable = %v", err)
	}
	buf := make([]byte, 5)
	if n, err := st.ReadAt(buf, 1); n != 2 || err == nil {
		t.Errorf("ReadAt past the end = %d, %v", n, err)
	}
}
