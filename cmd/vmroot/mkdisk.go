package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/build/mkdisk"
	"github.com/vmroot/vmroot/internal/build/output"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

func init() {
	var out, format string
	c := &cobra.Command{
		Use:   "mkdisk SPEC -o DISK",
		Short: "Build a partitioned disk (MBR or GPT, FAT filesystems, files) from a TOML spec",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("mkdisk: -o DISK is required")}
			}
			if err := output.CheckFormat(format); err != nil {
				return usageError{err}
			}
			s, err := mkdisk.Load(args[0])
			if err != nil {
				return err
			}
			if err := mkdisk.Build(s, out, imgfmt.Format(format)); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "the disk to write")
	c.Flags().StringVar(&format, "format", "raw", "output format: raw, vmdk[:monolithicSparse|streamOptimized] or qcow2")
	rootCmd.AddCommand(c)
}
