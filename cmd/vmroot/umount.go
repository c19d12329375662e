package main

import (
	"fmt"
	"os/exec"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a vmroot FUSE mount (the server then exits)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			mnt := args[0]
			err := unix.Unmount(mnt, 0)
			if err == nil {
				return nil
			}
			for _, tool := range []string{"fusermount3", "fusermount"} {
				if out, ferr := exec.Command(tool, "-u", mnt).CombinedOutput(); ferr == nil {
					return nil
				} else if _, lerr := exec.LookPath(tool); lerr == nil {
					return fmt.Errorf("%s: %v (%s: %s)", mnt, err, tool, string(out))
				}
			}
			return fmt.Errorf("%s: %v", mnt, err)
		},
	})
}
