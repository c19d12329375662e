// Package mkdisk builds a partitioned disk from a small TOML spec: an MBR
// (primary, extended and logical partitions in any slot order) or a GPT,
// FAT12/16/32 filesystems with labels, files copied in from host paths or
// from inside another image ("appliance.vmdk:/boot/vmlinuz"), and raw
// partition content taken from a file.
//
// Spec format (sizes and offsets: an integer counts 512-byte sectors, a
// string takes a unit: "4MiB", "512KiB", "1GiB", "8160s", "4096B"):
//
//	size = "64MiB"          # the whole disk
//	table = "mbr"           # or "gpt"
//	disk_id = 0x12345678    # MBR disk signature (optional)
//
//	[[partition]]           # listed in any order
//	number = 4              # MBR: 1-4 primary/extended, 5.. logical; GPT: 1-128
//	type = 0x04             # MBR type code; GPT: "esp", "basic", "linux" or a GUID
//	start = 32              # optional: after the previous partition listed
//	size = "4MiB"           # optional: up to the end of the disk or extended partition
//	bootable = true
//	filesystem = "fat16"    # fat12, fat16, fat32 (optional)
//	label = "BOOT"
//	raw = "boot.img"        # or: the partition's bytes, from a file
//	[[partition.file]]
//	src = "kernel"          # host file or directory, IMAGE:/path or IMAGE:N:/path
//	dst = "/"               # a directory (ending in /) or a file name
//
// Relative paths are relative to the spec file. Errors in the spec name its
// line and key.
package mkdisk

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/vmroot/vmroot/internal/build/disk"
)

// Spec is a parsed disk spec.
type Spec struct {
	Dir   string // the spec's directory, for relative paths
	Table disk.Table
	Parts []Part // in the order listed
}

// Part is one partition and its content.
type Part struct {
	disk.Partition
	FS    int // 0 (none), 12, 16 or 32
	Label string
	Raw   string // host file with the partition's bytes
	Files []Copy
	line  int
}

// Copy is one file or directory to put into a partition's filesystem.
type Copy struct {
	Src, Dst string
}

type rawSpec struct {
	Size      any
	Table     string
	DiskID    *int64 `toml:"disk_id"`
	Partition []rawPart
}

type rawPart struct {
	Number     int64
	Type       any
	Start      any
	Size       any
	Bootable   bool
	Name       string
	Filesystem string
	Label      string
	Raw        string
	File       []struct{ Src, Dst string }
}

// MaxSpecSize bounds the spec file; specs are a few hundred bytes.
const MaxSpecSize = 1 << 20

// Parse reads a spec; name is used in errors and dir resolves relative paths.
func Parse(name, dir string, text []byte) (*Spec, error) {
	if len(text) > MaxSpecSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a disk spec", name, MaxSpecSize)
	}
	var r rawSpec
	md, err := toml.Decode(string(text), &r)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if msg == "" {
				msg = strings.TrimPrefix(pe.Error(), "toml: ")
				if i := strings.Index(msg, ": "); i >= 0 {
					msg = msg[i+2:]
				}
			}
			return nil, fmt.Errorf("%s: line %d: %s", name, pe.Position.Line, oneLine(msg))
		}
		return nil, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
	}
	lines := strings.Split(string(text), "\n")
	loc := func(part int, key string) string { return fmt.Sprintf("%s: line %d", name, lineOf(lines, part, key)) }
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		part := -1
		if len(k) > 1 && k[0] == "partition" {
			part = partIndex(lines, len(r.Partition), k[len(k)-1])
		}
		return nil, fmt.Errorf("%s: unknown key %q", loc(part, k[len(k)-1]), k.String())
	}
	s := &Spec{Dir: dir}
	if r.Size == nil {
		return nil, fmt.Errorf("%s: no disk size (add size = \"64MiB\")", name)
	}
	size, err := sectors(r.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: key size: %v", loc(-1, "size"), err)
	}
	s.Table.Sectors = size
	switch r.Table {
	case "mbr", "":
		s.Table.Scheme = disk.MBR
	case "gpt":
		s.Table.Scheme = disk.GPT
	default:
		return nil, fmt.Errorf("%s: key table: %q is not mbr or gpt", loc(-1, "table"), r.Table)
	}
	if r.DiskID != nil {
		if *r.DiskID < 0 || *r.DiskID > 0xFFFFFFFF {
			return nil, fmt.Errorf("%s: key disk_id: %d does not fit 32 bits", loc(-1, "disk_id"), *r.DiskID)
		}
		s.Table.DiskID = uint32(*r.DiskID)
	}
	if len(r.Partition) > 128 {
		return nil, fmt.Errorf("%s: %d partitions; at most 128", name, len(r.Partition))
	}
	prevEnd := int64(-1)
	var ext *Part
	for i, rp := range r.Partition {
		p := Part{line: lineOf(lines, i, "")}
		bad := func(key, f string, a ...any) error {
			return fmt.Errorf("%s: partition %d: key %s: %s", loc(i, key), rp.Number, key, fmt.Sprintf(f, a...))
		}
		if rp.Number < 1 || rp.Number > 128 {
			return nil, bad("number", "%d is not a partition number (1-128)", rp.Number)
		}
		p.Number = int(rp.Number)
		if err := partType(&p.Partition, s.Table.Scheme, rp.Type); err != nil {
			return nil, bad("type", "%v", err)
		}
		isExt := s.Table.Scheme == disk.MBR && disk.IsExtended(p.MBRType)
		if rp.Start != nil {
			if p.Start, err = sectors(rp.Start); err != nil {
				return nil, bad("start", "%v", err)
			}
		} else {
			switch {
			case prevEnd < 0:
				p.Start = 2048
			case p.Number >= 5 && ext != nil:
				p.Start = prevEnd + 2 // the sector before holds the EBR
			default:
				p.Start = prevEnd + 1
			}
		}
		if rp.Size != nil {
			if p.Sectors, err = sectors(rp.Size); err != nil {
				return nil, bad("size", "%v", err)
			}
		} else {
			end := s.Table.LastUsable()
			if p.Number >= 5 && ext != nil {
				end = ext.End()
			}
			p.Sectors = end - p.Start + 1
			if p.Sectors <= 0 {
				return nil, bad("size", "no room left for the partition (it would start at sector %d)", p.Start)
			}
		}
		p.Bootable, p.Name, p.Label, p.Raw = rp.Bootable, rp.Name, rp.Label, rp.Raw
		switch strings.ToLower(rp.Filesystem) {
		case "":
		case "fat12":
			p.FS = 12
		case "fat16":
			p.FS = 16
		case "fat32":
			p.FS = 32
		default:
			return nil, bad("filesystem", "%q is not fat12, fat16 or fat32", rp.Filesystem)
		}
		if isExt && (p.FS != 0 || p.Raw != "" || len(rp.File) > 0) {
			return nil, bad("type", "an extended partition holds logical partitions, not a filesystem or content")
		}
		if p.Raw != "" && (p.FS != 0 || len(rp.File) > 0) {
			return nil, bad("raw", "raw content cannot be combined with a filesystem or files")
		}
		if len(rp.File) > 0 && p.FS == 0 {
			return nil, bad("file", "files need a filesystem (add filesystem = \"fat16\")")
		}
		if p.Label != "" && p.FS == 0 {
			return nil, bad("label", "a label needs a filesystem")
		}
		if p.Raw != "" && !filepath.IsAbs(p.Raw) {
			p.Raw = filepath.Join(dir, p.Raw)
		}
		for _, f := range rp.File {
			if f.Src == "" {
				return nil, bad("file", "a file entry without src")
			}
			dst := f.Dst
			if dst == "" {
				dst = "/"
			}
			p.Files = append(p.Files, Copy{Src: f.Src, Dst: dst})
		}
		if isExt {
			prevEnd = p.Start - 1 // logical partitions follow inside
		} else {
			prevEnd = p.End()
		}
		s.Parts = append(s.Parts, p)
		if isExt {
			ext = &s.Parts[len(s.Parts)-1]
		}
	}
	for _, p := range s.Parts {
		s.Table.Partitions = append(s.Table.Partitions, p.Partition)
	}
	if err := s.Table.Validate(); err != nil {
		// Point at the first partition the problem names.
		if m := partNumRE.FindStringSubmatch(err.Error()); m != nil {
			for _, p := range s.Parts {
				if fmt.Sprint(p.Number) == m[1] {
					return nil, fmt.Errorf("%s: line %d: %v", name, p.line, err)
				}
			}
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return s, nil
}

// partIndex finds which [[partition]] an undecoded key belongs to: the
// toml package reports keys without array indices, so the first partition
// whose table holds the key is named.
func partIndex(lines []string, n int, key string) int {
	for i := 0; i < n; i++ {
		if l := lineOf(lines, i, key); l != lineOf(lines, i, "") {
			return i
		}
	}
	return 0
}

var partNumRE = regexp.MustCompile(`partitions? (\d+)`)

// oneLine keeps an error on one line when it quotes the input.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

var unitRE = regexp.MustCompile(`^\s*([0-9]+)\s*(s|B|KiB|MiB|GiB|TiB|K|M|G|T)?\s*$`)

// sectors converts an integer (sectors) or a string with a unit.
func sectors(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Errorf("%d is negative", x)
		}
		if x > 1<<40 {
			return 0, fmt.Errorf("%d sectors is too large", x)
		}
		return x, nil
	case string:
		m := unitRE.FindStringSubmatch(x)
		if m == nil {
			return 0, fmt.Errorf("%q is not a size (e.g. 2048, \"4MiB\", \"8160s\")", x)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > 1<<50 {
			return 0, fmt.Errorf("%q is too large", x)
		}
		mult := map[string]int64{"": 512, "s": 512, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20,
			"G": 1 << 30, "GiB": 1 << 30, "T": 1 << 40, "TiB": 1 << 40}[m[2]]
		b := n * mult
		if b/mult != n || b > 1<<49 {
			return 0, fmt.Errorf("%q is too large", x)
		}
		if b%512 != 0 {
			return 0, fmt.Errorf("%q is not a whole number of 512-byte sectors", x)
		}
		return b / 512, nil
	}
	return 0, fmt.Errorf("want a number of sectors or a string such as \"4MiB\", got %v", v)
}

var (
	guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	hexRE  = regexp.MustCompile(`^(0x)?([0-9A-Fa-f]{1,2})$`)
)

func partType(p *disk.Partition, scheme disk.Scheme, v any) error {
	if v == nil {
		return errors.New("missing (e.g. type = 0x0c)")
	}
	if scheme == disk.GPT {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("a GPT type is a string (esp, basic, linux or a GUID), got %v", v)
		}
		switch strings.ToLower(s) {
		case "esp", "ef00":
			p.GPTType = disk.TypeESP
		case "basic", "0700":
			p.GPTType = disk.TypeBasicData
		case "linux", "8300":
			p.GPTType = disk.TypeLinux
		default:
			if !guidRE.MatchString(s) {
				return fmt.Errorf("%q is not esp, basic, linux or a GUID", s)
			}
			g, err := disk.ParseGUID(s)
			if err != nil {
				return err
			}
			p.GPTType = g
		}
		return nil
	}
	switch x := v.(type) {
	case int64:
		if x < 1 || x > 255 {
			return fmt.Errorf("%d is not an MBR type code (0x01-0xff)", x)
		}
		p.MBRType = byte(x)
	case string:
		m := hexRE.FindStringSubmatch(x)
		if m == nil {
			return fmt.Errorf("%q is not an MBR type code such as 0x0c", x)
		}
		n, _ := strconv.ParseUint(m[2], 16, 8)
		if n == 0 {
			return errors.New("type 0x00 marks an unused entry")
		}
		p.MBRType = byte(n)
	default:
		return fmt.Errorf("an MBR type is a number such as 0x0c, got %v", v)
	}
	return nil
}

var (
	partHeaderRE = regexp.MustCompile(`^\s*\[\[\s*partition\s*\]\]`)
	tableRE      = regexp.MustCompile(`^\s*\[`)
)

// lineOf finds the line of key in the part-th [[partition]] table (-1: the
// top level); key "" gives the table's header line.
func lineOf(lines []string, part int, key string) int {
	keyRE := regexp.MustCompile(`^\s*` + regexp.QuoteMeta(key) + `\s*=`)
	section, header := -1, 0
	for i, l := range lines {
		if partHeaderRE.MatchString(l) {
			section++
			if section == part {
				header = i + 1
				if key == "" {
					return header
				}
			}
			continue
		}
		if tableRE.MatchString(l) && !strings.Contains(l, "partition.") {
			section = 1 << 30 // some other table
			continue
		}
		if section == part && key != "" && keyRE.MatchString(l) {
			return i + 1
		}
	}
	if header > 0 {
		return header
	}
	return 1
}
