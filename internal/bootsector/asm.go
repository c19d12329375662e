package bootsector

import "fmt"

// asm emits 16-bit x86 machine code. Each method is one instruction with
// the encoding spelled out; jumps and address operands name labels and are
// resolved by link once every label is known.
type asm struct {
	org    uint16 // load address of byte 0
	code   []byte
	labels map[string]int
	fixups []fixup
}

type fixupKind int

const (
	rel8  fixupKind = iota // signed displacement from the end of the instruction
	abs16                  // org-relative absolute address, little endian
)

type fixup struct {
	at    int // offset of the operand in code
	end   int // offset just past the instruction (for rel8)
	label string
	kind  fixupKind
}

// 16-bit general registers in ModRM/opcode register order.
const (
	regAX = 0
	regCX = 1
	regDX = 2
	regBX = 3
	regSP = 4
	regBP = 5
	regSI = 6
	regDI = 7
)

// 8-bit registers in ModRM order.
const (
	regAL = 0
	regAH = 4
)

// Segment registers in ModRM order.
const (
	segES = 0
	segSS = 2
	segDS = 3
)

func newAsm(org uint16) *asm {
	return &asm{org: org, labels: map[string]int{}}
}

func (a *asm) emit(b ...byte) { a.code = append(a.code, b...) }

func (a *asm) imm16(v uint16) { a.emit(byte(v), byte(v>>8)) }

// label binds name to the current offset.
func (a *asm) label(name string) {
	if _, dup := a.labels[name]; dup {
		panic("bootsector: duplicate label " + name)
	}
	a.labels[name] = len(a.code)
}

// modrmReg encodes register-direct ModRM (mod=11).
func modrmReg(reg, rm int) byte { return 0xC0 | byte(reg)<<3 | byte(rm) }

func (a *asm) cli()   { a.emit(0xFA) }
func (a *asm) sti()   { a.emit(0xFB) }
func (a *asm) cld()   { a.emit(0xFC) }
func (a *asm) hlt()   { a.emit(0xF4) }
func (a *asm) lodsb() { a.emit(0xAC) }

// jmpFar: EA ptr16:16.
func (a *asm) jmpFar(seg uint16, label string) {
	a.emit(0xEA)
	a.ref(label, abs16, 2)
	a.imm16(seg)
}

// xorR16: 31 /r (xor r/m16, r16).
func (a *asm) xorR16(dst, src int) { a.emit(0x31, modrmReg(src, dst)) }

// movSreg: 8E /r (mov Sreg, r/m16).
func (a *asm) movSreg(seg, src int) { a.emit(0x8E, modrmReg(seg, src)) }

// movR16Imm: B8+r iw.
func (a *asm) movR16Imm(reg int, v uint16) {
	a.emit(0xB8 + byte(reg))
	a.imm16(v)
}

// movR16Label loads the absolute address of a label: B8+r iw.
func (a *asm) movR16Label(reg int, label string) {
	a.emit(0xB8 + byte(reg))
	a.ref(label, abs16, 2)
}

// movR8Imm: B0+r ib.
func (a *asm) movR8Imm(reg int, v byte) { a.emit(0xB0+byte(reg), v) }

// movR8: 88 /r (mov r/m8, r8).
func (a *asm) movR8(dst, src int) { a.emit(0x88, modrmReg(src, dst)) }

// outDXAL: EE.
func (a *asm) outDXAL() { a.emit(0xEE) }

// inALDX: EC.
func (a *asm) inALDX() { a.emit(0xEC) }

// testALImm: A8 ib.
func (a *asm) testALImm(v byte) { a.emit(0xA8, v) }

// push/pop r16: 50+r, 58+r.
func (a *asm) push(reg int) { a.emit(0x50 + byte(reg)) }
func (a *asm) pop(reg int)  { a.emit(0x58 + byte(reg)) }

// intN: CD ib.
func (a *asm) intN(n byte) { a.emit(0xCD, n) }

// Short jumps: opcode cb.
func (a *asm) jz(label string)   { a.emit(0x74); a.ref(label, rel8, 1) }
func (a *asm) jmp(label string)  { a.emit(0xEB); a.ref(label, rel8, 1) }
func (a *asm) loop(label string) { a.emit(0xE2); a.ref(label, rel8, 1) }

// ref reserves an operand of n bytes that will hold label's value.
func (a *asm) ref(label string, kind fixupKind, n int) {
	at := len(a.code)
	a.emit(make([]byte, n)...)
	a.fixups = append(a.fixups, fixup{at: at, end: len(a.code), label: label, kind: kind})
}

// link resolves every label reference and returns the code.
func (a *asm) link() ([]byte, error) {
	for _, f := range a.fixups {
		target, ok := a.labels[f.label]
		if !ok {
			return nil, fmt.Errorf("bootsector: undefined label %q", f.label)
		}
		switch f.kind {
		case rel8:
			d := target - f.end
			if d < -128 || d > 127 {
				return nil, fmt.Errorf("bootsector: jump to %q out of short range (%d)", f.label, d)
			}
			a.code[f.at] = byte(int8(d))
		case abs16:
			v := int(a.org) + target
			if v > 0xFFFF {
				return nil, fmt.Errorf("bootsector: address of %q overflows 16 bits", f.label)
			}
			a.code[f.at] = byte(v)
			a.code[f.at+1] = byte(v >> 8)
		}
	}
	return a.code, nil
}
