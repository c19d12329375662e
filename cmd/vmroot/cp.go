package main

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/copyout"
	"github.com/vmroot/vmroot/internal/fsys"
)

func init() {
	var partNum int
	var recursive bool
	c := &cobra.Command{
		Use:   "cp [-p N] [-r] IMAGE PATH... DEST",
		Short: "Copy files out of an image (like virt-copy-out / cp -a)",
		Long: "Copy files and directories out of an image onto the host, keeping modes, times,\n" +
			"symlinks, hard links, sparse holes, device nodes, FIFOs and sockets; when run as root,\n" +
			"also owners and every extended attribute (otherwise user.* attributes only).\n" +
			"DEST is a directory to copy into; with one PATH, a DEST that does not exist is\n" +
			"created as the copy itself. Copying / merges the root's contents into DEST.",
		Args: cobra.MinimumNArgs(3),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := openImageFS(c, args[0], partNum)
			if err != nil {
				return err
			}
			defer m.Close()
			srcs, dest := args[1:len(args)-1], args[len(args)-1]
			destDir, destName := dest, ""
			if st, err := os.Stat(dest); err != nil || !st.IsDir() {
				if len(srcs) > 1 {
					return fmt.Errorf("%s: not a directory (copying %d paths)", dest, len(srcs))
				}
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				destDir, destName = path.Dir(dest), path.Base(dest)
			}
			cp := copyout.New(m.FS, copyout.Options{Owners: os.Geteuid() == 0, Where: m.Where()})
			for _, src := range srcs {
				ino, a, err := resolveIn(m, src, false)
				if err != nil {
					cp.Close()
					return err
				}
				if a.IsDir() && !recursive {
					cp.Close()
					return fmt.Errorf("%s: %s: %w (use -r)", m.Where(), src, fsys.ErrIsDir)
				}
				dir, name := destDir, destName
				if name == "" {
					name = path.Base(path.Clean("/" + src))
					if name == "/" {
						// The root's contents merge into DEST, as virt-copy-out does.
						dir, name = path.Dir(path.Clean(dest)), path.Base(path.Clean(dest))
					}
				}
				if err := cp.CopyTo(ino, src, dir, name); err != nil {
					cp.Close()
					return err
				}
			}
			return cp.Close()
		},
	}
	c.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy directories recursively")
	partFlag(c, &partNum)
	rootCmd.AddCommand(c)
}
