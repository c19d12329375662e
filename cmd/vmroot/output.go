package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/vmdk"
	"golang.org/x/term"
)

// Helpers shared by the commands that write an image or part of one.

// inputFiles lists every host file the image reads, parents and extents included.
func inputFiles(im *image.Image) []string {
	files := []string{im.Path}
	if im.VMDK != nil {
		for info := im.VMDK.Info(); ; {
			files = append(files, info.Path)
			for _, e := range info.Extents {
				if e.File != "" {
					files = append(files, e.File)
				}
			}
			if info.Parent == nil {
				break
			}
			info = *info.Parent
		}
	}
	return files
}

// refuseInput keeps a command from ever writing over one of its own inputs.
func refuseInput(out string, inputs []string) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in); err == nil && os.SameFile(ost, ist) {
			return fmt.Errorf("%s: is an input of this image (%s); refusing to overwrite it", out, in)
		}
	}
	return nil
}

// progressBar returns a byte progress bar on stderr when it is a terminal.
func progressBar(size int64, what string) *progressbar.ProgressBar {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return progressbar.DefaultBytes(size, what)
}

// source is size bytes of an image from byte start (a partition, or the
// whole disk) that can tell where its data is, so that holes are skipped
// without being read: from the grain tables of a VMDK, from the host's
// SEEK_DATA/SEEK_HOLE for a raw image.
type source struct {
	*io.SectionReader
	start, size int64
	ranges      func(off, n int64) ([]vmdk.Range, error)
	file        *os.File // raw image opened again for lseek
}

func newSource(im *image.Image, start, size int64) (*source, error) {
	s := &source{SectionReader: io.NewSectionReader(im, start, size), start: start, size: size}
	switch {
	case im.VMDK != nil:
		s.ranges = im.VMDK.DataRanges
	default:
		f, err := os.Open(im.Path)
		if err != nil {
			return nil, err
		}
		s.file = f
		s.ranges = func(off, n int64) ([]vmdk.Range, error) { return vmdk.FileDataRanges(f, off, n) }
	}
	return s, nil
}

func (s *source) Close() error {
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}

// DataRanges implements vmdk.DataRanger in the source's own offsets.
func (s *source) DataRanges(off, n int64) ([]vmdk.Range, error) {
	n = min(n, s.size-off)
	if off < 0 || n <= 0 {
		return nil, nil
	}
	rs, err := s.ranges(s.start+off, n)
	for i := range rs {
		rs[i].Off -= s.start
	}
	return rs, err
}
