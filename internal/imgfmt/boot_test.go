package imgfmt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmroot/vmroot/internal/bootsector"
)

// bootTimeout bounds one boot; under TCG a boot takes well under a second
// alone and a few seconds with every format booting at once on 2 cores.
const bootTimeout = 20 * time.Second

// qmp is a minimal QMP client over qemu's stdin and stdout.
type qmp struct {
	in  io.Writer
	out *bufio.Scanner
}

// call runs one command and returns its "return" value, skipping events.
func (q *qmp) call(execute string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": execute}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.in.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	for q.out.Scan() {
		var r struct {
			Return json.RawMessage
			Error  *struct{ Desc string }
			Event  string
		}
		if err := json.Unmarshal(q.out.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("qmp: %v in %q", err, q.out.Text())
		}
		switch {
		case r.Event != "":
		case r.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s", execute, r.Error.Desc)
		case r.Return != nil:
			return r.Return, nil
		}
	}
	return nil, fmt.Errorf("qmp %s: qemu closed its output: %v", execute, q.out.Err())
}

// hmp runs a human monitor command and returns its text.
func (q *qmp) hmp(cmd string) (string, error) {
	raw, err := q.call("human-monitor-command", map[string]string{"command-line": cmd})
	if err != nil {
		return "", err
	}
	var s string
	err = json.Unmarshal(raw, &s)
	return s, err
}

var xpLine = regexp.MustCompile(`(?m)^[0-9a-f]+: (.*)$`)

// textScreen reads the 80x25 VGA text buffer at 0xB8000 and returns its
// characters (every other byte; the others are attributes) as lines.
func textScreen(q *qmp) (string, error) {
	out, err := q.hmp("xp /4000xb 0xb8000")
	if err != nil {
		return "", err
	}
	var chars []byte
	n := 0
	for _, m := range xpLine.FindAllStringSubmatch(strings.ReplaceAll(out, "\r", ""), -1) {
		for _, f := range strings.Fields(m[1]) {
			v, err := strconv.ParseUint(f, 0, 8)
			if err != nil {
				return "", fmt.Errorf("xp output %q: %v", f, err)
			}
			if n%2 == 0 {
				chars = append(chars, byte(v))
				if len(chars)%81 == 80 {
					chars = append(chars, '\n')
				}
			}
			n++
		}
	}
	if n != 4000 {
		return "", fmt.Errorf("xp returned %d bytes, want 4000", n)
	}
	return string(chars), nil
}

// boot runs qemu on the drive arguments until msg has appeared on the
// serial port, then reads the screen and the CPU state and quits.
func boot(t *testing.T, dir string, drive []string, msg string) (serial, screen, regs string, elapsed time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	serialPath := filepath.Join(dir, "serial.log")
	args := append([]string{"-accel", "tcg", "-display", "none", "-m", "32", "-nic", "none",
		"-serial", "file:" + serialPath, "-qmp", "stdio", "-snapshot"}, drive...)
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	q := &qmp{in: stdin, out: sc}
	if !sc.Scan() { // greeting
		t.Fatalf("qemu %s: no QMP greeting: %s", strings.Join(args, " "), stderr.String())
	}
	if _, err := q.call("qmp_capabilities", nil); err != nil {
		t.Fatal(err)
	}

	for {
		b, _ := os.ReadFile(serialPath)
		serial = string(b)
		if strings.Contains(serial, msg+"\r\n") {
			elapsed = time.Since(start)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("message not on the serial port after %v; serial output %q; qemu stderr %s",
				bootTimeout, serial, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if screen, err = textScreen(q); err != nil {
		t.Fatal(err)
	}
	// The code halts right after the last byte; give it a moment.
	for i := 0; i < 50; i++ {
		if regs, err = q.hmp("info registers"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(regs, " HLT=1") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _ = q.call("quit", nil)
	return serial, screen, regs, elapsed
}

var eipRE = regexp.MustCompile(`EIP=([0-9a-f]{8})`)

// TestBoot boots the boot sector from each format in qemu, all at once,
// and checks that the message reaches the serial port and the screen and
// that the CPU ends halted inside the boot sector.
func TestBoot(t *testing.T) {
	needTool(t, "qemu-system-x86_64", "qemu-system-x86 (with seabios)")
	msg := "vmroot boot test " + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	sector, err := bootsector.Build([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeImage(t, dir, f, sector)
			drive := []string{"-drive", "file=" + path + ",format=" + qemuFormat[f] + ",if=ide"}
			if f == ISO {
				drive = []string{"-drive", "file=" + path + ",format=raw,if=ide,media=cdrom", "-boot", "d"}
			}
			serial, screen, regs, elapsed := boot(t, dir, drive, msg)
			t.Logf("%s: message on the serial port after %v", f, elapsed.Round(time.Millisecond))
			if strings.Count(serial, msg) != 1 {
				t.Errorf("serial output %q: want the message once", serial)
			}
			if !strings.Contains(screen, msg) {
				t.Errorf("message not on the screen:\n%s", screen)
			}
			if !strings.Contains(regs, " HLT=1") {
				t.Errorf("CPU not halted:\n%s", regs)
			}
			if m := eipRE.FindStringSubmatch(regs); m == nil {
				t.Errorf("no EIP in:\n%s", regs)
			} else if eip, _ := strconv.ParseUint(m[1], 16, 32); eip < 0x7C00 || eip >= 0x7C00+bootsector.Size {
				t.Errorf("halted at EIP %#x, outside the boot sector", eip)
			}
		})
	}
}
