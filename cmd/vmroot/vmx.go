package main

import (
	"fmt"

	"github.com/spf13/cobra"
	vconfig "github.com/vmroot/vmroot/internal/config"
	"github.com/vmroot/vmroot/internal/netboot"
	"github.com/vmroot/vmroot/internal/netboot/vmx"
)

func init() {
	var (
		config, nic, romDir, format string
		ethernet                    int
	)
	c := &cobra.Command{
		Use:   "vmx [-c vmroot.toml] [--nic vmxnet3|e1000|e1000e] [--rom-dir DIR] [--format vmx|terraform|both] HOST",
		Short: "Print the .vmx settings that boot HOST through iPXE with a static address",
		Long: `Print what a VMware VM needs to boot HOST (a [[host]] of vmroot.toml,
the file "vmroot serve" reads, by name or MAC) from vmroot with a static address and no DHCP: iPXE's
guestinfo.ipxe.* settings (a scriptlet that chains to the host's iPXE
script over HTTP, the address, netmask, gateway and DNS server) and the
lines that replace the NIC's boot ROM with an iPXE ROM built with
VMWARE_SETTINGS, as .vmx lines and as a Terraform extra_config block.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if format != "vmx" && format != "terraform" && format != "both" {
				return usageError{fmt.Errorf("--format %q: want vmx, terraform or both", format)}
			}
			if _, ok := vmx.NICs[nic]; !ok {
				return usageError{fmt.Errorf("--nic %q: want vmxnet3, e1000 or e1000e", nic)}
			}
			cfg, err := vconfig.Load(config)
			if err != nil {
				return err
			}
			tab, err := cfg.Table()
			if err != nil {
				return err
			}
			h := tab.ByName(args[0])
			if h == nil {
				if mac, err := netboot.ParseMAC(args[0]); err == nil {
					h = tab.ByMAC(mac)
				}
			}
			if h == nil {
				return fmt.Errorf("%s: no host %q", config, args[0])
			}
			if cfg.HTTP == nil {
				return fmt.Errorf("%s: no [http] section: the VM's iPXE fetches its script over HTTP", config)
			}
			o := vmx.Options{NIC: nic, ROMDir: romDir, Ethernet: ethernet, HTTPBase: cfg.HTTP.BaseURL}
			out := c.OutOrStdout()
			if format != "terraform" {
				s, err := vmx.VMXLines(h, o)
				if err != nil {
					return err
				}
				fmt.Fprint(out, s)
			}
			if format == "both" {
				fmt.Fprintln(out)
			}
			if format != "vmx" {
				s, err := vmx.Terraform(h, o)
				if err != nil {
					return err
				}
				fmt.Fprint(out, s)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&config, "config", "c", "vmroot.toml", "configuration file (its [http] section and [[host]] table are used)")
	c.Flags().StringVar(&nic, "nic", "vmxnet3", "virtual NIC model: vmxnet3, e1000 or e1000e")
	c.Flags().StringVar(&romDir, "rom-dir", "/vmfs/volumes/datastore1/ipxe", "directory of the iPXE ROM images as the ESXi host sees it")
	c.Flags().IntVar(&ethernet, "ethernet", 0, "N of the VM's ethernetN adapter")
	c.Flags().StringVar(&format, "format", "both", "vmx, terraform or both")
	rootCmd.AddCommand(c)
}
