package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/netboot/prepare"
)

func init() {
	var (
		out, timezone, aptFile string
		nameservers            []string
		partNum                int
	)
	c := &cobra.Command{
		Use:   "prepare-nfsroot [-p N] IMAGE -o LAYERDIR [--nameserver IP]... [--timezone TZ] [--apt-sources FILE]",
		Short: "Build a read-only layer that lets IMAGE boot with its root on NFS",
		Long: `Build a customisation layer (a directory for --layer) that does what the
classic nfsroot setup did by hand, without touching IMAGE: /etc/fstab with
the local-disk lines (root, swap, other disk mounts) commented out, and
optionally /etc/resolv.conf nameservers, the timezone (/etc/timezone and
/etc/localtime) and /etc/apt/sources.list. Then check IMAGE's initramfs
and say whether it can mount an NFS root, and if not, what to do.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("-o LAYERDIR is required")}
			}
			var o prepare.Options
			for _, s := range nameservers {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return usageError{fmt.Errorf("--nameserver %q: not an IP address", s)}
				}
				o.Nameservers = append(o.Nameservers, a)
			}
			o.Timezone = timezone
			if aptFile != "" {
				b, err := os.ReadFile(aptFile)
				if err != nil {
					return err
				}
				o.AptSources = b
			}
			m, err := openImageFS(c, args[0], partNum)
			if err != nil {
				return err
			}
			defer m.Close()
			res, err := prepare.Prepare(m.FS, out, o)
			if err != nil {
				return fmt.Errorf("%s: %w", m.Where(), err)
			}
			w := c.OutOrStdout()
			if len(res.Written) == 0 {
				fmt.Fprintf(w, "layer %s: nothing to change\n", out)
			} else {
				fmt.Fprintf(w, "layer %s: wrote %s\n", out, strings.Join(res.Written, " "))
			}
			for _, l := range res.Commented {
				fmt.Fprintf(w, "/etc/fstab: commented out: %s\n", l)
			}
			r := res.Initramfs
			if r == nil {
				fmt.Fprintf(c.ErrOrStderr(), "vmroot: warning: initramfs not checked: %v\n", res.InitramfsErr)
				return nil
			}
			verdict := "can mount an NFS root"
			if !r.OK() {
				verdict = "CANNOT mount an NFS root"
			}
			fmt.Fprintf(w, "initramfs %s (%s): %s\n", r.Path, r.Tool, verdict)
			fmt.Fprintf(w, "  NFS modules: %s; NIC drivers: %s\n", listOrNone(r.Modules), listOrNone(r.NICs))
			for _, p := range r.Problems {
				fmt.Fprintf(w, "  problem: %s\n", p)
			}
			for _, n := range r.Notes {
				fmt.Fprintf(w, "  note: %s\n", n)
			}
			if !r.OK() {
				fmt.Fprintf(c.ErrOrStderr(), "vmroot: warning: %s: the initramfs cannot mount an NFS root (%d problems, see above)\n", m.Where(), len(r.Problems))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "layer directory to write (created if missing)")
	c.Flags().StringArrayVar(&nameservers, "nameserver", nil, "nameserver for /etc/resolv.conf; repeatable")
	c.Flags().StringVar(&timezone, "timezone", "", "timezone such as Europe/Berlin (must exist in the image's /usr/share/zoneinfo)")
	c.Flags().StringVar(&aptFile, "apt-sources", "", "file to install as /etc/apt/sources.list")
	partFlag(c, &partNum)
	rootCmd.AddCommand(c)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
