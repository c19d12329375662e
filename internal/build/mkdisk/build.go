package mkdisk

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vmroot/vmroot/internal/build/fat"
	"github.com/vmroot/vmroot/internal/build/output"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

// Load reads and parses the spec file at p.
func Load(p string) (*Spec, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > MaxSpecSize {
		return nil, fmt.Errorf("%s: not a disk spec (a TOML file of at most %d bytes)", p, MaxSpecSize)
	}
	text, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return Parse(p, filepath.Dir(p), text)
}

// Build writes the disk the spec describes to dest in format f.
func Build(s *Spec, dest string, f imgfmt.Format) error {
	images := map[string]*image.Mounted{}
	defer func() {
		for _, m := range images {
			m.Close()
		}
	}()
	// Resolve every source before the output exists, so that a missing
	// file fails fast.
	vols := make([]*fat.Builder, len(s.Parts))
	for i, p := range s.Parts {
		if p.FS == 0 {
			continue
		}
		b := fat.New(p.Sectors*512, fat.Options{Type: p.FS, Label: p.Label, HiddenSectors: uint32(min(p.Start, 0xFFFFFFFF)),
			VolumeID: uint32(p.Start)*2654435761 ^ s.Table.DiskID ^ uint32(p.Number), Time: time.Now()})
		for _, c := range p.Files {
			if err := s.add(b, c, images); err != nil {
				return fmt.Errorf("partition %d: %w", p.Number, err)
			}
		}
		vols[i] = b
	}
	for _, p := range s.Parts {
		if p.Raw == "" {
			continue
		}
		st, err := os.Stat(p.Raw)
		if err != nil {
			return fmt.Errorf("partition %d: raw: %w", p.Number, err)
		}
		if st.Size() > p.Sectors*512 {
			return fmt.Errorf("partition %d: raw: %s holds %d bytes, more than the partition's %d", p.Number, p.Raw, st.Size(), p.Sectors*512)
		}
	}
	return output.Write(dest, f, s.Table.Sectors*512, func(w *os.File) error {
		if err := s.Table.Write(w); err != nil {
			return err
		}
		for i, p := range s.Parts {
			if vols[i] != nil {
				if err := vols[i].Write(w, p.Start*512); err != nil {
					return fmt.Errorf("partition %d: %w", p.Number, err)
				}
			}
			if p.Raw != "" {
				if err := copyRaw(w, p.Raw, p.Start*512); err != nil {
					return fmt.Errorf("partition %d: raw: %w", p.Number, err)
				}
			}
		}
		return nil
	})
}

func copyRaw(w *os.File, src string, off int64) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(io.NewOffsetWriter(w, off), r)
	return err
}

// add declares c's files in b.
func (s *Spec) add(b *fat.Builder, c Copy, images map[string]*image.Mounted) error {
	if m := imageSrcRE.FindStringSubmatch(c.Src); m != nil {
		img := m[1]
		if !filepath.IsAbs(img) {
			img = filepath.Join(s.Dir, img)
		}
		if st, err := os.Stat(img); err == nil && st.Mode().IsRegular() {
			partNum := image.Auto
			if m[2] != "" {
				partNum, _ = strconv.Atoi(m[2])
			}
			key := fmt.Sprintf("%s:%d", img, partNum)
			mt := images[key]
			if mt == nil {
				if mt, err = image.OpenFS(img, partNum); err != nil {
					return err
				}
				images[key] = mt
			}
			return addFromImage(b, mt, m[3], c.Dst)
		}
	}
	src := c.Src
	if !filepath.IsAbs(src) {
		src = filepath.Join(s.Dir, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return addHostFile(b, src, st, fileDest(c.Dst, filepath.Base(src)))
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := path.Join("/", c.Dst, filepath.ToSlash(rel))
		st, err := os.Stat(p) // follows symbolic links: FAT has none
		if err != nil {
			return err
		}
		if st.IsDir() {
			if dst == "/" {
				return nil
			}
			return b.Mkdir(dst)
		}
		return addHostFile(b, p, st, dst)
	})
}

// imageSrcRE matches "IMAGE:/path" and "IMAGE:N:/path" (partition N).
var imageSrcRE = regexp.MustCompile(`^(.+?)(?::([0-9]{1,3}))?:(/.*)$`)

// fileDest is where a single file goes: into dst when it names a directory.
func fileDest(dst, base string) string {
	if strings.HasSuffix(dst, "/") {
		return path.Join(dst, base)
	}
	return dst
}

func addHostFile(b *fat.Builder, p string, st os.FileInfo, dst string) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file or directory", p)
	}
	return b.AddFile(dst, st.Size(), func() (io.ReadCloser, error) { return os.Open(p) })
}

func addFromImage(b *fat.Builder, m *image.Mounted, p, dst string) error {
	ino, err := fsys.Resolve(m.FS, p, true)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Where(), err)
	}
	a, err := m.FS.Stat(ino)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", m.Where(), p, err)
	}
	if !a.IsDir() {
		if !a.IsRegular() {
			return fmt.Errorf("%s: %s: not a regular file or directory", m.Where(), p)
		}
		return b.AddFile(fileDest(dst, path.Base(p)), a.Size, FileSource(m.FS, ino, a.Size))
	}
	return fsys.Walk(m.FS, ino, func(rel string, ino uint64, a fsys.Attr) error {
		d := path.Join("/", dst, rel)
		switch {
		case a.IsDir():
			if d == "/" {
				return nil
			}
			return b.Mkdir(d)
		case a.IsRegular():
			return b.AddFile(d, a.Size, FileSource(m.FS, ino, a.Size))
		case a.IsSymlink():
			// FAT has no links: a link to a file becomes a copy of it,
			// as for host sources.
			full := path.Join(p, rel)
			ti, err := fsys.Resolve(m.FS, full, true)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", m.Where(), full, err)
			}
			ta, err := m.FS.Stat(ti)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", m.Where(), full, err)
			}
			if !ta.IsRegular() {
				return fmt.Errorf("%s: %s: a symbolic link to something other than a file; FAT cannot hold it", m.Where(), full)
			}
			return b.AddFile(d, ta.Size, FileSource(m.FS, ti, ta.Size))
		}
		return fmt.Errorf("%s: %s: a device, FIFO or socket; FAT cannot hold it", m.Where(), path.Join(p, rel))
	})
}

// FileSource reads a file of an fsys.FS.
func FileSource(f fsys.FS, ino uint64, size int64) fat.Source {
	return func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(inoReader{f, ino}, 0, size)), nil
	}
}

type inoReader struct {
	f   fsys.FS
	ino uint64
}

func (r inoReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(r.ino, p, off) }
