package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/internal/qcow2"
	"github.com/vmroot/vmroot/vmdk"
)

func init() {
	var format, adapter, cid string
	c := &cobra.Command{
		Use:   "convert IMAGE -O raw|vmdk[:SUBFORMAT]|qcow2 OUT",
		Short: "Convert a disk image to raw, VMDK or qcow2",
		Long: "Convert IMAGE (a VMDK in any layout, or a raw disk) to OUT in the format given by -O:\n" +
			"  raw                 a sparse raw file (zero blocks become holes)\n" +
			"  vmdk[:SUBFORMAT]    SUBFORMAT is one of " + strings.Join(vmdk.Subformats, ", ") + "\n" +
			"                      (default monolithicSparse); split subformats write OUT plus\n" +
			"                      OUT-f001.vmdk... or OUT-s001.vmdk... as qemu-img names them\n" +
			"  qcow2               qcow2 version 3, 64 KiB clusters\n" +
			"All-zero blocks are never stored and holes of IMAGE are skipped without being read.\n" +
			"Output goes to temporary files renamed into place at the end; an input is never\n" +
			"overwritten. A progress bar is shown when stderr is a terminal.",
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			in, out := args[0], args[1]
			kind, sub, _ := strings.Cut(format, ":")
			opts := vmdk.WriteOptions{Subformat: sub, AdapterType: adapter}
			switch {
			case format == "":
				return usageError{fmt.Errorf("convert: -O FORMAT is required (raw, vmdk[:subformat] or qcow2)")}
			case kind == "vmdk":
				if sub != "" && !slices.Contains(vmdk.Subformats, sub) {
					return usageError{fmt.Errorf("convert: unknown VMDK subformat %q (want one of %s)", sub, strings.Join(vmdk.Subformats, ", "))}
				}
			case sub != "" || kind != "raw" && kind != "qcow2":
				return usageError{fmt.Errorf("convert: unknown output format %q (want raw, vmdk[:subformat] or qcow2)", format)}
			case adapter != "" || cid != "":
				return usageError{fmt.Errorf("convert: --adapter-type and --cid apply to -O vmdk only")}
			}
			if cid != "" {
				n, err := strconv.ParseUint(cid, 16, 32)
				if err != nil || n == 0 {
					return usageError{fmt.Errorf("convert: --cid %q is not a non-zero 32-bit hex number", cid)}
				}
				opts.CID = uint32(n)
			}
			im, err := image.Open(in)
			if err != nil {
				return err
			}
			defer im.Close()
			outputs := []string{out}
			if kind == "vmdk" {
				if outputs, err = vmdk.OutputFiles(out, im.Size(), opts.Subformat); err != nil {
					return err
				}
			}
			for _, o := range outputs {
				if err := refuseInput(o, inputFiles(im)); err != nil {
					return err
				}
			}
			src, err := newSource(im, 0, im.Size())
			if err != nil {
				return err
			}
			defer src.Close()
			bar := progressBar(im.Size(), "converting")
			switch kind {
			case "raw":
				err = extractTo(src, im.Size(), out, 0o644, bar)
			case "qcow2":
				qopts := qcow2.Options{Workers: extractWorkers}
				if bar != nil {
					qopts.Progress = func(done int64) { bar.Set64(done) }
				}
				err = qcow2.Write(out, src, im.Size(), qopts)
			case "vmdk":
				if bar != nil {
					opts.Progress = func(done int64) { bar.Set64(done) }
				}
				err = vmdk.Write(out, src, im.Size(), opts)
			}
			if err != nil {
				// vmdk.Write and qcow2.Write name the file; extractTo does not.
				if kind != "raw" {
					return fmt.Errorf("%s: %w", in, err)
				}
				return fmt.Errorf("%s -> %s: %w", in, out, err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "output-format", "O", "", "output format: raw, vmdk[:subformat] or qcow2")
	c.Flags().StringVar(&adapter, "adapter-type", "", "VMDK adapter type: ide (default), buslogic, lsilogic or legacyESX")
	c.Flags().StringVar(&cid, "cid", "", "VMDK content ID in hex (default random); fixes the output for a given input")
	rootCmd.AddCommand(c)
}
