package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/overlay"
)

func init() {
	d := &cobra.Command{Use: "diff", Short: "Inspect or reset a diff directory (offline)"}
	var base string
	list := &cobra.Command{
		Use:   "list DIFF [--base IMAGE]",
		Short: "List added (A), changed (C), metadata-only changed (M), deleted (D) paths and opaque directories (O)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var b fsys.FS
			if base != "" {
				l, err := openLayer(c, base, image.Auto)
				if err != nil {
					return fmt.Errorf("%s: %w", base, err)
				}
				defer l.close()
				b = l.fs
			}
			ch, err := overlay.DiffList(args[0], b)
			if err != nil {
				return err
			}
			for _, x := range ch {
				fmt.Fprintf(c.OutOrStdout(), "%c %s\n", x.Kind, x.Path)
			}
			return nil
		},
	}
	list.Flags().StringVar(&base, "base", "", "base image or directory, to tell added from changed")
	du := &cobra.Command{
		Use:   "du DIFF",
		Short: "Show the disk space a diff uses",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			u, err := overlay.DiffUsage(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%d bytes\t%d objects\t%d whiteouts\t%s\n", u.Bytes, u.Files, u.Whiteouts, args[0])
			return nil
		},
	}
	reset := &cobra.Command{
		Use:   "reset DIFF",
		Short: "Discard every change in DIFF (refused while mounted)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return overlay.DiffReset(args[0])
		},
	}
	d.AddCommand(list, du, reset)
	rootCmd.AddCommand(d)
}
