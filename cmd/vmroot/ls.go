package main

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
)

func init() {
	var partNum int
	var long, recursive bool
	c := &cobra.Command{
		Use:   "ls [-p N] [-l] [-R] IMAGE [PATH]",
		Short: "List a directory inside an image (like virt-ls)",
		Long: "List a directory inside an image (like virt-ls). With -R, every object below PATH\n" +
			"is printed as a full path, parents first.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := openImageFS(c, args[0], partNum)
			if err != nil {
				return err
			}
			defer m.Close()
			dir := "/"
			if len(args) == 2 {
				dir = args[1]
			}
			w := bufio.NewWriterSize(c.OutOrStdout(), 256<<10)
			defer w.Flush()
			if err := listDir(w, m, dir, long, recursive); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&long, "long", "l", false, "long listing: mode, links, owner, group, size, time, name")
	c.Flags().BoolVarP(&recursive, "recursive", "R", false, "list subdirectories recursively, printing full paths")
	partFlag(c, &partNum)
	rootCmd.AddCommand(c)
}

func listDir(w io.Writer, m *image.Mounted, dir string, long, recursive bool) error {
	ino, a, err := resolveIn(m, dir, true)
	if err != nil {
		return err
	}
	abs := path.Clean("/" + dir)
	if !a.IsDir() {
		return printEntry(w, m.FS, abs, path.Base(abs), ino, a, long)
	}
	if recursive {
		err := fsys.Walk(m.FS, ino, func(p string, ino uint64, a fsys.Attr) error {
			if p == "" {
				return nil
			}
			full := path.Join(abs, p)
			return printEntry(w, m.FS, full, full, ino, a, long)
		})
		if err != nil {
			return fmt.Errorf("%s: %s: %w", m.Where(), abs, err)
		}
		return nil
	}
	ents, err := m.FS.ReadDir(ino)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", m.Where(), dir, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	for _, e := range ents {
		a, err := m.FS.Stat(e.Ino)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", m.Where(), path.Join(abs, e.Name), err)
		}
		if err := printEntry(w, m.FS, path.Join(abs, e.Name), e.Name, e.Ino, a, long); err != nil {
			return fmt.Errorf("%s: %w", m.Where(), err)
		}
	}
	return nil
}

func printEntry(w io.Writer, f fsys.FS, full, name string, ino uint64, a fsys.Attr, long bool) error {
	if !long {
		_, err := fmt.Fprintln(w, name)
		return err
	}
	size := strconv.FormatInt(a.Size, 10)
	if t := a.Mode & fsys.S_IFMT; t == fsys.S_IFCHR || t == fsys.S_IFBLK {
		size = fmt.Sprintf("%d, %d", fsys.Major(a.Rdev), fsys.Minor(a.Rdev))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %3d %5d %5d %10s %s %s", fsys.ModeString(a.Mode), a.Nlink, a.Uid, a.Gid, size,
		a.Mtime.UTC().Format("2006-01-02 15:04:05"), name)
	if a.IsSymlink() {
		t, err := f.Readlink(ino)
		if err != nil {
			return fmt.Errorf("%s: %w", full, err)
		}
		b.WriteString(" -> " + t)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
