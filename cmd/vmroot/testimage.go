package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/bootsector"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

// testimageOutput is a format and the suffix its file gets after NAME.
type testimageOutput struct {
	format imgfmt.Format
	suffix string
}

// testimageOutputs lists every format in output order.
var testimageOutputs = []testimageOutput{
	{imgfmt.Raw, ".img"},
	{imgfmt.QCOW2, ".qcow2"},
	{imgfmt.VMDK, ".vmdk"},
	{imgfmt.VDI, ".vdi"},
	{imgfmt.VHD, ".vhd"},
	{imgfmt.VHDFixed, "-fixed.vhd"},
	{imgfmt.ISO, ".iso"},
}

const testimageDefaultMessage = "vmroot testimage: the boot sector is running"

func init() {
	var (
		out     string
		formats []string
		message string
	)
	var names []string
	for _, o := range testimageOutputs {
		names = append(names, string(o.format))
	}
	c := &cobra.Command{
		Use:   "testimage -o NAME [--format " + strings.Join(names, ",") + "] [--message TEXT]",
		Short: "Write tiny bootable disk images in every format, for testing virtualization setups",
		Long: `Write a 512-byte boot sector that prints a message on the screen and on the
first serial port (COM1, 115200 baud 8N1), then halts, as a disk image in each
requested format. NAME is a base name; the files are:

  NAME.img         raw          the sector itself (512 bytes)
  NAME.qcow2       qcow2        qcow2 v3, 512-byte clusters
  NAME.vmdk        vmdk         VMDK monolithicSparse, 4 KiB grains
  NAME.vdi         vdi          VirtualBox VDI, dynamic (1 MiB block)
  NAME.vhd         vhd          VHD dynamic, 4 KiB blocks
  NAME-fixed.vhd   vhd-fixed    VHD fixed
  NAME.iso         iso          ISO 9660 CD booting the sector as an El Torito
                                1.44 MB floppy

Disks are one sector where the format allows it; a VHD is 34,816 bytes, the
smallest size its CHS geometry describes exactly. The message gets a CR LF
appended and may be at most ` + fmt.Sprint(bootsector.MaxMessageLen) + ` bytes.
Each file is written to a temporary file beside it and renamed into place
once every requested format has been written, so a failure leaves no
partial output.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("testimage: unexpected argument %q (the output is given with -o NAME)", args[0])}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			return runTestimage(c, out, formats, message)
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{fmt.Errorf("testimage: %w", err)}
	})
	c.Flags().StringVarP(&out, "output", "o", "", "base name of the output files (required)")
	c.Flags().StringSliceVar(&formats, "format", names, "formats to write, comma separated")
	c.Flags().StringVar(&message, "message", testimageDefaultMessage, "text the boot sector prints")
	rootCmd.AddCommand(c)
}

type testimagePlan struct {
	format imgfmt.Format
	path   string
}

func runTestimage(c *cobra.Command, out string, formats []string, message string) error {
	if out == "" {
		return usageError{errors.New("testimage: -o NAME is required")}
	}
	if base := filepath.Base(out); base == "." || base == ".." || strings.HasSuffix(out, string(filepath.Separator)) {
		return usageError{fmt.Errorf("testimage: -o %q: NAME must end in a file name", out)}
	}
	var plan []testimagePlan
	for _, o := range testimageOutputs {
		if slices.Contains(formats, string(o.format)) {
			plan = append(plan, testimagePlan{o.format, out + o.suffix})
		}
	}
	for _, f := range formats {
		if !slices.ContainsFunc(testimageOutputs, func(o testimageOutput) bool { return string(o.format) == f }) {
			return usageError{fmt.Errorf("testimage: unknown format %q (known: %s)", f, formatList())}
		}
	}
	if len(plan) == 0 {
		return usageError{fmt.Errorf("testimage: no format given (known: %s)", formatList())}
	}
	sector, err := bootsector.Build([]byte(message))
	if err != nil {
		return usageError{fmt.Errorf("testimage: --message: %w", err)}
	}

	// A directory in the way would fail the final rename after other
	// files were already in place.
	for _, p := range plan {
		if st, err := os.Stat(p.path); err == nil && st.IsDir() {
			return fmt.Errorf("testimage: %s: is a directory", p.path)
		}
	}

	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t) // renamed files are gone already
		}
	}()
	sizes := make([]int64, len(plan))
	for i, p := range plan {
		tmp, size, err := writeTestimage(p, sector)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			return fmt.Errorf("testimage: %s: %w", p.path, err)
		}
		sizes[i] = size
	}
	for i, p := range plan {
		if err := os.Rename(temps[i], p.path); err != nil {
			return fmt.Errorf("testimage: %s: %w", p.path, pathErrCause(err))
		}
	}
	temps = nil

	tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 0, 2, ' ', 0)
	for i, p := range plan {
		fmt.Fprintf(tw, "%s\t%s\t%d bytes\n", p.path, p.format, sizes[i])
	}
	return tw.Flush()
}

// writeTestimage writes one image to a new temporary file beside its
// destination and returns the temporary file's name (set as soon as the
// file exists, so that the caller can remove it) and its size.
func writeTestimage(p testimagePlan, sector []byte) (tmpName string, size int64, err error) {
	dir, base := filepath.Dir(p.path), filepath.Base(p.path)
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return "", 0, fmt.Errorf("create a temporary file in %s: %w", dir, pathErrCause(err))
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = pathErrCause(cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	err = imgfmt.Write(bw, p.format, bytes.NewReader(sector), int64(len(sector)), imgfmt.Options{Name: base})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return f.Name(), 0, pathErrCause(err)
	}
	st, err := f.Stat()
	if err != nil {
		return f.Name(), 0, pathErrCause(err)
	}
	return f.Name(), st.Size(), nil
}

// pathErrCause drops the temporary file's name from an error: messages
// name the destination instead.
func pathErrCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

func formatList() string {
	var s []string
	for _, o := range testimageOutputs {
		s = append(s, string(o.format))
	}
	return strings.Join(s, ", ")
}
