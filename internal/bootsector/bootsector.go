// Package bootsector generates a 512-byte x86 real-mode boot sector that
// prints a message on the screen (BIOS int 10h teletype) and on COM1, then
// halts forever. The machine code is emitted by this package; no assembler
// is involved.
package bootsector

import (
	"fmt"
)

// Size is the size of a boot sector in bytes.
const Size = 512

// loadAddr is where a BIOS loads the boot sector (0000:7C00).
const loadAddr = 0x7C00

// COM1 UART registers (8250/16550) and the bits used.
const (
	com1     = 0x3F8
	uartTHR  = com1 + 0 // transmit holding (DLAB=0) / divisor low (DLAB=1)
	uartIER  = com1 + 1 // interrupt enable (DLAB=0) / divisor high (DLAB=1)
	uartFCR  = com1 + 2
	uartLCR  = com1 + 3
	uartMCR  = com1 + 4
	uartLSR  = com1 + 5
	lcrDLAB  = 0x80
	lcr8N1   = 0x03
	fcrReset = 0xC7 // enable FIFOs, clear both, 14-byte trigger
	mcrReady = 0x03 // DTR and RTS
	lsrTHRE  = 0x20 // transmit holding register empty
	divisor  = 1    // 115200 baud
)

// lineEnd follows the message on both outputs, so that whatever comes next
// (on the serial console, the next line of a log) starts on a fresh line.
const lineEnd = "\r\n"

// MaxMessageLen is the longest message Build accepts: the code, the
// message, the trailing CR LF and the 0x55AA signature fill 512 bytes.
const MaxMessageLen = Size - 2 - codeLen - len(lineEnd)

// codeLen is the length of the machine code in front of the message;
// TestMaxMessageLen checks it against the emitted code.
const codeLen = 101

// Build returns the boot sector printing msg followed by CR LF. The message
// bytes are sent unchanged to the screen and to COM1 (115200 baud, 8N1).
// It fails if msg is longer than MaxMessageLen.
func Build(msg []byte) ([]byte, error) {
	if len(msg) > MaxMessageLen {
		return nil, fmt.Errorf("message is %d bytes, the boot sector has room for at most %d", len(msg), MaxMessageLen)
	}
	text := append(append([]byte{}, msg...), lineEnd...)

	a := newAsm(loadAddr)
	// Some BIOSes enter at 07C0:0000 instead of 0000:7C00; a far jump
	// makes CS=0 so that label addresses are right in every case.
	a.jmpFar(0, "start")
	a.label("start")
	a.cli()
	a.xorR16(regAX, regAX)
	a.movSreg(segDS, regAX)
	a.movSreg(segES, regAX)
	a.movSreg(segSS, regAX)
	a.movR16Imm(regSP, loadAddr) // stack grows down from below the code
	a.sti()
	a.cld() // lodsb walks forward

	// COM1: no interrupts, divisor latch, 8N1, FIFOs, DTR+RTS.
	outb := func(port uint16, v byte) {
		a.movR16Imm(regDX, port)
		a.movR8Imm(regAL, v)
		a.outDXAL()
	}
	outb(uartIER, 0)
	outb(uartLCR, lcrDLAB)
	outb(uartTHR, divisor&0xFF)
	outb(uartIER, divisor>>8)
	outb(uartLCR, lcr8N1)
	outb(uartFCR, fcrReset)
	outb(uartMCR, mcrReady)

	a.movR16Label(regSI, "msg")
	a.movR16Imm(regCX, uint16(len(text)))
	a.label("next")
	a.lodsb()
	a.movR8(regAH, regAL) // keep the byte: polling LSR overwrites AL
	a.movR16Imm(regDX, uartLSR)
	a.label("wait")
	a.inALDX()
	a.testALImm(lsrTHRE)
	a.jz("wait")
	a.movR8(regAL, regAH)
	a.movR16Imm(regDX, uartTHR)
	a.outDXAL()
	// Teletype output: AH=0Eh, AL=char, BH=page 0, BL=colour.
	a.movR8Imm(regAH, 0x0E)
	a.movR16Imm(regBX, 0x0007)
	// Not every BIOS preserves registers across int 10h.
	a.push(regCX)
	a.push(regSI)
	a.intN(0x10)
	a.pop(regSI)
	a.pop(regCX)
	a.loop("next")

	a.label("halt")
	a.cli()
	a.hlt()
	a.jmp("halt") // an NMI or SMI can still wake hlt
	a.label("msg")
	a.emit(text...)

	code, err := a.link()
	if err != nil {
		return nil, err
	}
	if a.labels["msg"] != codeLen {
		return nil, fmt.Errorf("bootsector: code is %d bytes, codeLen says %d", a.labels["msg"], codeLen)
	}
	if len(code) > Size-2 {
		return nil, fmt.Errorf("bootsector: %d bytes do not fit in %d", len(code), Size-2)
	}
	sector := make([]byte, Size)
	copy(sector, code)
	sector[Size-2] = 0x55
	sector[Size-1] = 0xAA
	return sector, nil
}
