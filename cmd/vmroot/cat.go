package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/fsys"
)

func init() {
	var partNum int
	c := &cobra.Command{
		Use:   "cat [-p N] IMAGE PATH...",
		Short: "Print files from inside an image (like virt-cat)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := openImageFS(c, args[0], partNum)
			if err != nil {
				return err
			}
			defer m.Close()
			w := bufio.NewWriterSize(c.OutOrStdout(), 1<<20)
			defer w.Flush()
			for _, p := range args[1:] {
				ino, a, err := resolveIn(m, p, true)
				if err != nil {
					return err
				}
				if a.IsDir() {
					return fmt.Errorf("%s: %s: %w", m.Where(), p, fsys.ErrIsDir)
				}
				if _, err := io.Copy(w, io.NewSectionReader(fileReader{m.FS, ino}, 0, a.Size)); err != nil {
					return fmt.Errorf("%s: %s: %w", m.Where(), p, err)
				}
			}
			return w.Flush()
		},
	}
	partFlag(c, &partNum)
	rootCmd.AddCommand(c)
}

// fileReader adapts one file of an fsys.FS to io.ReaderAt.
type fileReader struct {
	fs  fsys.FS
	ino uint64
}

func (r fileReader) ReadAt(p []byte, off int64) (int, error) { return r.fs.ReadAt(r.ino, p, off) }
