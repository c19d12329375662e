package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/build/hybrid"
	"github.com/vmroot/vmroot/internal/build/installer"
	"github.com/vmroot/vmroot/internal/build/output"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

func init() {
	var o installer.Options
	var out, format, tmpl, snippets, cdrive, meta, network, biosMBR string
	var sizeMiB int64
	var bios bool
	c := &cobra.Command{
		Use:   "installer ISO -o DISK",
		Short: "Turn an ESXi installer ISO into a UEFI-bootable disk with a kickstart",
		Long: "Turn an ESXi installer ISO into a UEFI-bootable disk: a GPT with an EFI System\n" +
			"partition holding the ISO's files and a kickstart module.\n\n" +
			"With --bios, write instead the ISO itself as a BIOS-bootable disk: an MBR whose\n" +
			"boot code (--bios-mbr, isolinux's isohdpfx.bin) starts the ISO's own isolinux\n" +
			"through its hybrid entry point, and one partition covering the ISO. The ISO\n" +
			"must boot BIOS systems with isolinux 3.72 or later; no kickstart is added.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("installer: -o DISK is required")}
			}
			if err := output.CheckFormat(format); err != nil {
				return usageError{err}
			}
			if !bios && c.Flags().Changed("bios-mbr") {
				return usageError{fmt.Errorf("installer: --bios-mbr applies to --bios only")}
			}
			if bios {
				if cdrive != "" || meta != "" || network != "" || tmpl != "" || snippets != "" || sizeMiB != 0 {
					return usageError{fmt.Errorf("installer: --bios writes the ISO itself as a disk: it takes no kickstart options and no --size")}
				}
				return hybrid.Write(args[0], out, imgfmt.Format(format), biosMBR)
			}
			if (cdrive == "") == (meta == "") || cdrive != "" && network != "" {
				return usageError{fmt.Errorf("installer: give --config-drive DIR, or --meta-data FILE [--network-data FILE]")}
			}
			var err error
			if cdrive != "" {
				o.Meta, o.Network, err = installer.LoadConfigDrive(cdrive)
			} else {
				o.Meta, o.Network, err = installer.LoadFiles(meta, network)
			}
			if err != nil {
				return err
			}
			if tmpl != "" {
				b, err := os.ReadFile(tmpl)
				if err != nil {
					return err
				}
				o.Template = string(b)
			}
			if snippets != "" {
				if o.Snippets, err = installer.LoadSnippets(snippets); err != nil {
					return err
				}
			}
			o.ISO, o.Output, o.Format, o.Size = args[0], out, imgfmt.Format(format), sizeMiB<<20
			return installer.Build(o)
		},
	}
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "", "the disk to write")
	f.StringVar(&format, "format", "raw", "output format: raw, vmdk[:monolithicSparse|streamOptimized] or qcow2")
	f.StringVar(&tmpl, "ks-template", "", "kickstart template (Go text/template) replacing the built-in one")
	f.StringVar(&snippets, "snippets", "", "directory with pre/, post/ and firstboot/ holding .sh and .py snippets")
	f.StringVar(&cdrive, "config-drive", "", "OpenStack config drive directory (openstack/latest/meta_data.json, network_data.json)")
	f.StringVar(&meta, "meta-data", "", "OpenStack meta_data.json")
	f.StringVar(&network, "network-data", "", "OpenStack network_data.json")
	f.Int64Var(&sizeMiB, "size", 0, "disk size in MiB (default: the content plus headroom)")
	f.BoolVar(&bios, "bios", false, "write the ISO itself as a BIOS-bootable disk booting its isolinux (no kickstart)")
	f.StringVar(&biosMBR, "bios-mbr", hybrid.DefaultMBR, "MBR boot code for --bios (isolinux's isohdpfx.bin)")
	rootCmd.AddCommand(c)
}
