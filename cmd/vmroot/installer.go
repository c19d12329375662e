package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/build/installer"
	"github.com/vmroot/vmroot/internal/build/output"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

func init() {
	var o installer.Options
	var out, format, tmpl, snippets, cdrive, meta, network string
	var sizeMiB int64
	c := &cobra.Command{
		Use:   "installer ISO -o DISK",
		Short: "Turn an ESXi installer ISO into a UEFI-bootable disk with a kickstart",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("installer: -o DISK is required")}
			}
			if err := output.CheckFormat(format); err != nil {
				return usageError{err}
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
	f.StringVar(&format, "format", "raw", "output format: raw, vmdk or qcow2")
	f.StringVar(&tmpl, "ks-template", "", "kickstart template (Go text/template) replacing the built-in one")
	f.StringVar(&snippets, "snippets", "", "directory with pre/, post/ and firstboot/ holding .sh and .py snippets")
	f.StringVar(&cdrive, "config-drive", "", "OpenStack config drive directory (openstack/latest/meta_data.json, network_data.json)")
	f.StringVar(&meta, "meta-data", "", "OpenStack meta_data.json")
	f.StringVar(&network, "network-data", "", "OpenStack network_data.json")
	f.Int64Var(&sizeMiB, "size", 0, "disk size in MiB (default: the content plus headroom)")
	rootCmd.AddCommand(c)
}
