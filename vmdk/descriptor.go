package vmdk

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// NoParentCID is the parentCID of a disk without a parent.
const NoParentCID = 0xffffffff

// Access modes of an extent line.
const (
	AccessRW       = "RW"
	AccessRDONLY   = "RDONLY"
	AccessNOACCESS = "NOACCESS"
)

// Extent types of an extent line.
const (
	ExtentFlat       = "FLAT"
	ExtentSparse     = "SPARSE"
	ExtentZero       = "ZERO"
	ExtentVMFS       = "VMFS"
	ExtentVMFSSparse = "VMFSSPARSE"
	ExtentVMFSRDM    = "VMFSRDM"
	ExtentVMFSRaw    = "VMFSRAW"
	ExtentSESparse   = "SESPARSE"
)

// Descriptor is a parsed VMDK text descriptor, either a separate file or
// the one embedded in a sparse extent.
type Descriptor struct {
	Version    int
	CID        uint32
	HasCID     bool
	ParentCID  uint32 // NoParentCID when absent
	CreateType string
	ParentHint string // parentFileNameHint, "" if none
	Extents    []ExtentLine
	DDB        map[string]string // ddb.* entries, keys without the "ddb." prefix
	Other      map[string]string // other header entries (encoding, ...)
}

// ExtentLine is one extent line of a descriptor. Sizes are in sectors.
type ExtentLine struct {
	Access  string
	Sectors int64
	Type    string
	File    string // as written, unresolved; "" for ZERO
	Offset  int64  // FLAT and VMFS only: sectors into File
	Line    int    // 1-based line number in the descriptor
}

// ParseDescriptor parses descriptor text. Text after the first NUL byte is
// ignored, as an embedded descriptor is NUL-padded. Errors name the
// offending line; callers add the file name.
func ParseDescriptor(b []byte) (*Descriptor, error) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > MaxDescriptorSize {
		return nil, fmt.Errorf("descriptor of %d bytes exceeds the limit of %d", len(b), MaxDescriptorSize)
	}
	d := &Descriptor{ParentCID: NoParentCID, DDB: map[string]string{}, Other: map[string]string{}}
	var total int64
	haveVersion := false
	for n, raw := range bytes.Split(b, []byte{'\n'}) {
		lineNo := n + 1
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			continue
		}
		tok, _, _ := strings.Cut(line, " ")
		tok, _, _ = strings.Cut(tok, "\t")
		switch tok {
		case AccessRW, AccessRDONLY, AccessNOACCESS:
			e, err := parseExtentLine(line, lineNo)
			if err != nil {
				return nil, err
			}
			total += e.Sectors
			if total > MaxCapacity {
				return nil, fmt.Errorf("line %d: disk size exceeds %d sectors", lineNo, int64(MaxCapacity))
			}
			d.Extents = append(d.Extents, e)
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !validKey(key) {
			return nil, fmt.Errorf("line %d: not a key=value, extent or comment line: %s", lineNo, quoteTrunc(line))
		}
		val = unquote(strings.TrimSpace(val))
		var err error
		switch {
		case key == "version":
			d.Version, err = strconv.Atoi(val)
			if err != nil || d.Version < 1 || d.Version > 3 {
				return nil, fmt.Errorf("line %d: unsupported descriptor version %s", lineNo, quoteTrunc(val))
			}
			haveVersion = true
		case key == "CID":
			d.CID, err = parseCID(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad CID %s", lineNo, quoteTrunc(val))
			}
			d.HasCID = true
		case key == "parentCID":
			d.ParentCID, err = parseCID(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: bad parentCID %s", lineNo, quoteTrunc(val))
			}
		case key == "createType":
			d.CreateType = val
		case key == "parentFileNameHint":
			d.ParentHint = val
		case strings.HasPrefix(key, "ddb."):
			d.DDB[key[len("ddb."):]] = val
		default:
			d.Other[key] = val
		}
	}
	if !haveVersion {
		return nil, fmt.Errorf("no version line: not a VMDK descriptor")
	}
	if d.CreateType == "" {
		return nil, fmt.Errorf("no createType line")
	}
	return d, nil
}

func parseExtentLine(line string, lineNo int) (ExtentLine, error) {
	bad := func(why string) (ExtentLine, error) {
		return ExtentLine{}, fmt.Errorf("line %d: bad extent line (%s): %s", lineNo, why, quoteTrunc(line))
	}
	e := ExtentLine{Line: lineNo}
	rest := line
	var sectors string
	e.Access, rest = nextField(rest)
	sectors, rest = nextField(rest)
	e.Type, rest = nextField(rest)
	n, err := strconv.ParseInt(sectors, 10, 64)
	if err != nil || n <= 0 || n > MaxCapacity {
		return bad("size is not a positive sector count")
	}
	e.Sectors = n
	switch e.Type {
	case ExtentFlat, ExtentSparse, ExtentZero, ExtentVMFS, ExtentVMFSSparse, ExtentVMFSRDM, ExtentVMFSRaw, ExtentSESparse:
	case "":
		return bad("no extent type")
	default:
		return bad("unknown extent type")
	}
	if e.Type == ExtentZero && rest == "" {
		return e, nil
	}
	if strings.HasPrefix(rest, `"`) {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return bad("unterminated file name")
		}
		e.File, rest = rest[1:1+end], strings.TrimSpace(rest[2+end:])
	} else {
		e.File, rest = nextField(rest)
		if strings.Contains(e.File, `"`) {
			return bad("stray quote in file name")
		}
	}
	if e.File == "" {
		return bad("no file name")
	}
	if e.Type == ExtentZero {
		e.File = "" // a ZERO extent has no file; VMware ignores a name
		return e, nil
	}
	if rest != "" {
		if e.Type != ExtentFlat && e.Type != ExtentVMFS && e.Type != ExtentVMFSRDM && e.Type != ExtentVMFSRaw {
			return bad("offset given for a non-flat extent")
		}
		var off string
		off, rest = nextField(rest)
		o, err := strconv.ParseInt(off, 10, 64)
		if err != nil || o < 0 || o > MaxCapacity {
			return bad("offset is not a sector count")
		}
		e.Offset = o
		if rest != "" {
			return bad("trailing text")
		}
	}
	return e, nil
}

func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func parseCID(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 16, 32)
	return uint32(n), err
}

func quoteTrunc(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// Encode renders d as descriptor text in the layout qemu-img and VMware
// write. Map entries are written in sorted key order.
func (d *Descriptor) Encode() []byte {
	var b strings.Builder
	b.WriteString("# Disk DescriptorFile\n")
	v := d.Version
	if v == 0 {
		v = 1
	}
	fmt.Fprintf(&b, "version=%d\n", v)
	for _, k := range sortedKeys(d.Other) {
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, d.Other[k])
	}
	fmt.Fprintf(&b, "CID=%08x\nparentCID=%08x\ncreateType=\"%s\"\n", d.CID, d.ParentCID, d.CreateType)
	if d.ParentHint != "" {
		fmt.Fprintf(&b, "parentFileNameHint=\"%s\"\n", d.ParentHint)
	}
	b.WriteString("\n# Extent description\n")
	for _, e := range d.Extents {
		fmt.Fprintf(&b, "%s %d %s", e.Access, e.Sectors, e.Type)
		if e.Type != ExtentZero {
			fmt.Fprintf(&b, " \"%s\"", e.File)
			if e.Type == ExtentFlat || e.Offset != 0 {
				fmt.Fprintf(&b, " %d", e.Offset)
			}
		}
		b.WriteByte('\n')
	}
	b.WriteString("\n# The Disk Data Base\n#DDB\n\n")
	for _, k := range sortedKeys(d.DDB) {
		fmt.Fprintf(&b, "ddb.%s = \"%s\"\n", k, d.DDB[k])
	}
	return []byte(b.String())
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
