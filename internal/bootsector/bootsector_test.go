package bootsector

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// insn is one line of objdump output.
type insn struct {
	off  int
	text string // mnemonic and operands, whitespace collapsed
}

// disassemble runs objdump on b as raw 16-bit code.
func disassemble(t *testing.T, b []byte) []insn {
	t.Helper()
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("objdump not found: install the Debian package binutils")
	}
	path := filepath.Join(t.TempDir(), "sector.bin")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("objdump", "-D", "-b", "binary", "-mi8086", path).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	var insns []insn
	for _, line := range strings.Split(string(out), "\n") {
		// "  4c:\t74 fb                \tje     0x49"
		f := strings.Split(line, "\t")
		if len(f) < 3 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		off, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(f[0], ":")), 16, 32)
		if err != nil {
			continue
		}
		insns = append(insns, insn{int(off), strings.Join(strings.Fields(strings.Join(f[2:], " ")), " ")})
	}
	return insns
}

// TestDisassembly checks the emitted machine code against an independent
// disassembler, instruction by instruction.
func TestDisassembly(t *testing.T) {
	sector, err := Build([]byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	// Written from the intended program, in objdump's AT&T syntax. The
	// message "hello\r\n" (7 bytes) starts at 0x65 = 0x7C65 in memory.
	want := []string{
		"ljmp $0x0,$0x7c05",
		"cli",
		"xor %ax,%ax",
		"mov %ax,%ds",
		"mov %ax,%es",
		"mov %ax,%ss",
		"mov $0x7c00,%sp",
		"sti",
		"cld",
		"mov $0x3f9,%dx", "mov $0x0,%al", "out %al,(%dx)", // IER = 0
		"mov $0x3fb,%dx", "mov $0x80,%al", "out %al,(%dx)", // LCR = DLAB
		"mov $0x3f8,%dx", "mov $0x1,%al", "out %al,(%dx)", // DLL = 1: 115200
		"mov $0x3f9,%dx", "mov $0x0,%al", "out %al,(%dx)", // DLM = 0
		"mov $0x3fb,%dx", "mov $0x3,%al", "out %al,(%dx)", // LCR = 8N1
		"mov $0x3fa,%dx", "mov $0xc7,%al", "out %al,(%dx)", // FCR
		"mov $0x3fc,%dx", "mov $0x3,%al", "out %al,(%dx)", // MCR = DTR|RTS
		"mov $0x7c65,%si",
		"mov $0x7,%cx",
		"lods %ds:(%si),%al", // 0x43
		"mov %al,%ah",
		"mov $0x3fd,%dx",
		"in (%dx),%al", // 0x49
		"test $0x20,%al",
		"je 0x49",
		"mov %ah,%al",
		"mov $0x3f8,%dx",
		"out %al,(%dx)",
		"mov $0xe,%ah",
		"mov $0x7,%bx",
		"push %cx",
		"push %si",
		"int $0x10",
		"pop %si",
		"pop %cx",
		"loop 0x43",
		"cli", // 0x61
		"hlt",
		"jmp 0x61",
	}
	got := disassemble(t, sector)
	if len(got) < len(want)+1 {
		t.Fatalf("objdump gave %d instructions, want at least %d", len(got), len(want)+1)
	}
	for i, w := range want {
		if got[i].text != w {
			t.Errorf("instruction %d at %#x: got %q, want %q", i, got[i].off, got[i].text, w)
		}
	}
	// The code ends exactly where the message begins.
	if got[len(want)].off != codeLen || codeLen != 0x65 {
		t.Errorf("message starts at %#x, the code ends at %#x (codeLen %#x)", got[len(want)].off, got[len(want)].off, codeLen)
	}
	if m := sector[codeLen : codeLen+7]; string(m) != "hello\r\n" {
		t.Errorf("message bytes %q", m)
	}
	if rest := sector[codeLen+7 : Size-2]; !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Error("bytes between the message and the signature are not zero")
	}
	if sector[510] != 0x55 || sector[511] != 0xAA {
		t.Errorf("signature %#x %#x", sector[510], sector[511])
	}
}

// TestMessageLimit checks that the longest allowed message fits and fills
// the sector, and that one byte more is refused with the limit named.
func TestMessageLimit(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, MaxMessageLen)
	sector, err := Build(long)
	if err != nil {
		t.Fatalf("message of MaxMessageLen=%d bytes: %v", MaxMessageLen, err)
	}
	if len(sector) != Size {
		t.Fatalf("sector is %d bytes", len(sector))
	}
	if !bytes.Equal(sector[codeLen:Size-2], append(long, "\r\n"...)) {
		t.Error("a full-length message does not end right before the signature")
	}
	_, err = Build(append(long, 'x'))
	if err == nil {
		t.Fatal("message one byte over the limit was accepted")
	}
	if !strings.Contains(err.Error(), strconv.Itoa(MaxMessageLen)) {
		t.Errorf("error %q does not name the limit %d", err, MaxMessageLen)
	}
}

// TestMessageBytes checks that any byte value, NUL included, is carried
// and that the loop count follows the length.
func TestMessageBytes(t *testing.T) {
	msg := []byte{0, 1, 0xFF, 'a', 0}
	sector, err := Build(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sector[codeLen : codeLen+len(msg)+2]; !bytes.Equal(got, append(msg, "\r\n"...)) {
		t.Errorf("message bytes % x", got)
	}
	// mov $imm16,%cx is B9 lo hi at 0x40.
	if sector[0x40] != 0xB9 || int(sector[0x41])|int(sector[0x42])<<8 != len(msg)+2 {
		t.Errorf("count operand % x, want b9 %02x 00", sector[0x40:0x43], len(msg)+2)
	}
}
