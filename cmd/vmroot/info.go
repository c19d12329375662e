package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/internal/part"
	"github.com/vmroot/vmroot/vmdk"
)

// The JSON form of `vmroot info`; field names follow qemu-img info where one exists.
type infoJSON struct {
	Filename    string     `json:"filename"`
	Format      string     `json:"format"`
	VirtualSize int64      `json:"virtual-size"`
	ActualSize  int64      `json:"actual-size"`
	VMDK        *vmdkJSON  `json:"vmdk,omitempty"`
	Table       *tableJSON `json:"partition-table,omitempty"`
	Filesystem  *fsJSON    `json:"filesystem,omitempty"`
}

type vmdkJSON struct {
	CreateType string       `json:"create-type"`
	Version    int          `json:"version"`
	CID        string       `json:"cid"`
	ParentCID  string       `json:"parent-cid"`
	ParentHint string       `json:"parent-filename-hint,omitempty"`
	Extents    []extentJSON `json:"extents"`
	Parent     *vmdkJSON    `json:"parent,omitempty"`
	Filename   string       `json:"filename"`
}

type extentJSON struct {
	Filename   string `json:"filename,omitempty"`
	Type       string `json:"type"`
	Access     string `json:"access"`
	Offset     int64  `json:"offset"`
	Size       int64  `json:"virtual-size"`
	Allocated  int64  `json:"allocated"`
	Compressed bool   `json:"compressed"`
	Layout     string `json:"layout,omitempty"`
}

type tableJSON struct {
	Scheme     string     `json:"scheme"`
	DiskID     string     `json:"disk-id,omitempty"`
	SectorSize int        `json:"sector-size"`
	Partitions []partJSON `json:"partitions"`
	Warnings   []string   `json:"warnings,omitempty"`
}

type partJSON struct {
	Number     int     `json:"number"`
	Start      int64   `json:"start"`
	Size       int64   `json:"size"`
	Type       string  `json:"type"`
	TypeCode   string  `json:"type-code,omitempty"`
	TypeGUID   string  `json:"type-guid,omitempty"`
	UUID       string  `json:"uuid,omitempty"`
	Name       string  `json:"name,omitempty"`
	Bootable   bool    `json:"bootable"`
	Extended   bool    `json:"extended,omitempty"`
	Logical    bool    `json:"logical,omitempty"`
	Filesystem *fsJSON `json:"filesystem,omitempty"`
}

type fsJSON struct {
	Type          string   `json:"type"`
	Label         string   `json:"label"`
	UUID          string   `json:"uuid"`
	Size          int64    `json:"size"`
	Used          int64    `json:"used"`
	BlockSize     int64    `json:"block-size"`
	Features      []string `json:"features,omitempty"`
	NeedsRecovery bool     `json:"needs-recovery,omitempty"`
	Error         string   `json:"error,omitempty"`
}

func init() {
	var asJSON bool
	c := &cobra.Command{
		Use:   "info IMAGE [--json]",
		Short: "Describe an image: format, extents, parents, partitions, filesystems",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			im, err := image.Open(args[0])
			if err != nil {
				return err
			}
			defer im.Close()
			info, err := describe(im)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "    ")
				return enc.Encode(info)
			}
			return printInfo(c.OutOrStdout(), info)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rootCmd.AddCommand(c)
}

func allocated(path string) int64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

func describe(im *image.Image) (*infoJSON, error) {
	out := &infoJSON{Filename: im.Path, Format: im.Format, VirtualSize: im.Size()}
	if im.VMDK != nil {
		vi := im.VMDK.Info()
		out.VMDK = vmdkInfo(&vi)
		for _, e := range out.VMDK.Extents {
			out.ActualSize += e.Allocated
		}
		if vi.Path != "" && !hasExtentFile(&vi, vi.Path) {
			out.ActualSize += allocated(vi.Path)
		}
	} else {
		out.ActualSize = allocated(im.Path)
	}
	t, err := im.Partitions()
	if err != nil {
		return nil, err
	}
	if t.Scheme == part.Scheme("none") {
		out.Filesystem = fsInfo(im, im.Size())
		return out, nil
	}
	tj := &tableJSON{Scheme: string(t.Scheme), DiskID: t.DiskID, SectorSize: t.SectorSize, Partitions: []partJSON{}, Warnings: t.Warnings}
	for _, p := range t.Partitions {
		pj := partJSON{Number: p.Number, Start: p.Start, Size: p.Size, Type: p.Type, TypeGUID: p.TypeGUID,
			UUID: p.UUID, Name: p.Name, Bootable: p.Bootable, Extended: p.Extended, Logical: p.Logical}
		if t.Scheme == part.Scheme("mbr") {
			pj.TypeCode = fmt.Sprintf("0x%02x", p.MBRType)
		}
		if !p.Extended {
			pj.Filesystem = fsInfo(p.Reader(im), p.Size)
		}
		tj.Partitions = append(tj.Partitions, pj)
	}
	out.Table = tj
	return out, nil
}

func hasExtentFile(vi *vmdk.Info, path string) bool {
	for _, e := range vi.Extents {
		if e.File == path {
			return true
		}
	}
	return false
}

func vmdkInfo(vi *vmdk.Info) *vmdkJSON {
	j := &vmdkJSON{Filename: vi.Path, CreateType: vi.CreateType, Version: vi.Version,
		CID: fmt.Sprintf("%08x", vi.CID), ParentCID: fmt.Sprintf("%08x", vi.ParentCID), ParentHint: vi.ParentHint}
	for _, e := range vi.Extents {
		j.Extents = append(j.Extents, extentJSON{Filename: e.File, Type: e.Type, Access: e.Access, Offset: e.Offset,
			Size: e.Size, Allocated: e.Allocated, Compressed: e.Compressed, Layout: e.Layout})
	}
	if vi.Parent != nil {
		j.Parent = vmdkInfo(vi.Parent)
	}
	return j
}

// fsInfo describes the filesystem in r, or nil when there is none.
func fsInfo(r io.ReaderAt, size int64) *fsJSON {
	if image.FSType(r, size) == "" {
		return nil
	}
	f, err := image.OpenFilesystem(r, size)
	if err != nil {
		return &fsJSON{Type: image.FSType(r, size), Error: err.Error()}
	}
	defer f.Close()
	i := f.Info()
	return &fsJSON{Type: i.Type, Label: i.Label, UUID: i.UUID, Size: i.Size(), Used: i.Used(),
		BlockSize: i.BlockSize, Features: i.Features, NeedsRecovery: i.NeedsRecovery}
}

func human(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.3g %s", f, units[u])
}

func printInfo(w io.Writer, in *infoJSON) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image:\t%s\n", in.Filename)
	format := in.Format
	if in.VMDK != nil {
		format += " (" + in.VMDK.CreateType + ")"
	}
	fmt.Fprintf(tw, "file format:\t%s\n", format)
	fmt.Fprintf(tw, "virtual size:\t%s (%d bytes)\n", human(in.VirtualSize), in.VirtualSize)
	fmt.Fprintf(tw, "disk size:\t%s\n", human(in.ActualSize))
	tw.Flush()
	for v, depth := in.VMDK, 0; v != nil; v, depth = v.Parent, depth+1 {
		ind := strings.Repeat("  ", depth)
		if depth > 0 {
			fmt.Fprintf(w, "%sparent: %s (%s)\n", ind, v.Filename, v.CreateType)
		}
		fmt.Fprintf(w, "%scid: %s, parent cid: %s\n", ind, v.CID, v.ParentCID)
		fmt.Fprintf(w, "%sextents:\n", ind)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for i, e := range v.Extents {
			name := e.Filename
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(tw, "%s  [%d]\t%s\t%s\t%s\t%s\tallocated %s\t%s\n", ind, i, e.Type, e.Access, human(e.Size), name, human(e.Allocated), e.Layout)
		}
		tw.Flush()
	}
	if in.Filesystem != nil {
		fmt.Fprintf(w, "no partition table; whole-disk filesystem:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\n", fsLine(in.Filesystem))
		tw.Flush()
	}
	if t := in.Table; t != nil {
		fmt.Fprintf(w, "partition table: %s", t.Scheme)
		if t.DiskID != "" {
			fmt.Fprintf(w, " (disk id %s)", t.DiskID)
		}
		fmt.Fprintln(w)
		for _, warn := range t.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  #\tboot\tstart\tsize\ttype\tfilesystem\n")
		for _, p := range t.Partitions {
			boot := ""
			if p.Bootable {
				boot = "*"
			}
			typ := p.Type
			if p.TypeCode != "" {
				typ += " (" + p.TypeCode + ")"
			}
			fsl := ""
			if p.Filesystem != nil {
				fsl = fsLine(p.Filesystem)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s\t%s\n", p.Number, boot, p.Start, human(p.Size), typ, fsl)
		}
		tw.Flush()
	}
	return nil
}

func fsLine(f *fsJSON) string {
	if f.Error != "" {
		return f.Type + ": error: " + f.Error
	}
	s := fmt.Sprintf("%s label=%q uuid=%s size=%s used=%s", f.Type, f.Label, f.UUID, human(f.Size), human(f.Used))
	if f.NeedsRecovery {
		s += " (journal needs recovery)"
	}
	return s
}
