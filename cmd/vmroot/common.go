package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
)

// partFlag adds the -p option shared by the commands that read one filesystem.
func partFlag(c *cobra.Command, p *int) {
	c.Flags().IntVarP(p, "partition", "p", image.Auto,
		"partition number (0 = whole disk; default: the only partition holding a Linux filesystem)")
}

// openImageFS opens IMAGE and warns when the filesystem needs journal recovery.
func openImageFS(c *cobra.Command, path string, partNum int) (*image.Mounted, error) {
	m, err := image.OpenFS(path, partNum)
	if err != nil {
		return nil, err
	}
	if m.Table != nil {
		for _, w := range m.Table.Warnings {
			fmt.Fprintf(c.ErrOrStderr(), "vmroot: warning: %s: partition table: %s\n", m.Image.Path, w)
		}
	}
	if m.FS.Info().NeedsRecovery {
		fmt.Fprintf(c.ErrOrStderr(), "vmroot: warning: %s: the filesystem's journal needs recovery (it was not cleanly unmounted); recent changes may be missing\n", m.Where())
	}
	return m, nil
}

// resolveIn resolves path inside m, naming the image in errors.
func resolveIn(m *image.Mounted, path string, follow bool) (uint64, fsys.Attr, error) {
	ino, err := fsys.Resolve(m.FS, path, follow)
	if err != nil {
		return 0, fsys.Attr{}, fmt.Errorf("%s: %w", m.Where(), err)
	}
	a, err := m.FS.Stat(ino)
	if err != nil {
		return 0, fsys.Attr{}, fmt.Errorf("%s: %s: %w", m.Where(), path, err)
	}
	return ino, a, nil
}
