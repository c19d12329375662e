// Package installer turns an ESXi-style installer ISO into a bootable
// whole-disk image: a GPT with one EFI System partition (FAT32) from
// sector 2048 holding the ISO's files, a boot module (a GNU-format gzip
// tar) with a kickstart and the firstboot scripts, and both BOOT.CFG files
// edited to load the module and run the kickstart. The kickstart comes from
// a text/template (DefaultTemplate or the user's), user snippets and the
// host configuration in OpenStack config-drive metadata, which
// NetworkScript turns into esxcli commands.
package installer

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vmroot/vmroot/internal/build/disk"
	"github.com/vmroot/vmroot/internal/build/fat"
	"github.com/vmroot/vmroot/internal/build/mkdisk"
	"github.com/vmroot/vmroot/internal/build/output"
	"github.com/vmroot/vmroot/internal/fatiso"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/internal/imgfmt"
)

// ModuleName is the boot module's file name; KSPath is the kickstart's
// path once the boot loader has unpacked the module.
const (
	ModuleName = "vmroot.tgz"
	KSPath     = "/vmroot/KS.CFG"
)

// Options describe one installer disk.
type Options struct {
	ISO      string
	Output   string
	Format   imgfmt.Format
	Template string // kickstart template text; empty: DefaultTemplate
	Snippets []Snippet
	Meta     *MetaData
	Network  *NetworkData
	// Size is the disk size in bytes; 0 sizes it to the content plus
	// headroom (an eighth of the content and 64 MiB).
	Size int64
	Time time.Time // timestamps in the module and on FAT; zero: now
}

// Build writes the installer disk.
func Build(o Options) error {
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	im, err := image.Open(o.ISO)
	if err != nil {
		return err
	}
	defer im.Close()
	if image.FSType(im, im.Size()) != "iso9660" {
		return fmt.Errorf("%s: not an ISO9660 image", o.ISO)
	}
	iso, err := fatiso.OpenISO(im, im.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", o.ISO, err)
	}
	defer iso.Close()

	// Without Rock Ridge or Joliet the reader shows ISO9660 names the way
	// Linux does, in lower case; the ISO holds them in upper case (d-
	// characters), and that is how they are copied.
	plain := true
	for _, f := range iso.Info().Features {
		if f == "rockridge" || f == "joliet" {
			plain = false
		}
	}
	isoName := func(p string) string {
		if plain {
			return strings.ToUpper(p)
		}
		return p
	}
	type file struct {
		path string
		ino  uint64
		size int64
	}
	var files []file
	var dirs []string
	var content int64
	var skipped []string           // symbolic links and special files: FAT cannot hold them
	bootCfg := map[string]string{} // upper-case path -> path as the ISO names it
	err = fsys.Walk(iso, iso.Root(), func(p string, ino uint64, a fsys.Attr) error {
		switch {
		case p == "":
		case a.IsDir():
			dirs = append(dirs, isoName(p))
			content += 4096
		case a.IsRegular():
			files = append(files, file{isoName(p), ino, a.Size})
			content += (a.Size + 4095) &^ 4095
			bootCfg[strings.ToUpper(p)] = isoName(p)
		default:
			skipped = append(skipped, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", o.ISO, err)
	}
	if bootCfg["BOOT.CFG"] == "" {
		return fmt.Errorf("%s: no BOOT.CFG in the ISO's root; not an ESXi installer ISO", o.ISO)
	}
	if bootCfg["EFI/BOOT/BOOTX64.EFI"] == "" {
		return fmt.Errorf("%s: not bootable: no EFI/BOOT/BOOTX64.EFI (the disk boots through UEFI)", o.ISO)
	}
	if bootCfg[strings.ToUpper(ModuleName)] != "" {
		return fmt.Errorf("%s: already holds %s", o.ISO, ModuleName)
	}

	if len(skipped) > 0 {
		return fmt.Errorf("%s: %s is not a regular file or directory; FAT cannot hold it", o.ISO, skipped[0])
	}
	netScript := NetworkScript(o.Meta, o.Network)
	salt, err := newSalt()
	if err != nil {
		return err
	}
	ks, err := Kickstart(o.Template, KSData{RootPW: o.Meta.AdminPass, RootPWHash: SHA512Crypt(o.Meta.AdminPass, salt),
		NetworkLine: NetworkLine(o.Meta, o.Network), Hostname: o.Meta.Hostname, Network: netScript, Snippets: o.Snippets})
	if err != nil {
		return fmt.Errorf("kickstart template: %w", err)
	}
	mfiles := []moduleFile{{strings.TrimPrefix(KSPath, "/"), ks}, {"vmroot/firstboot/00-network.sh", []byte(netScript)}}
	for i, s := range o.Snippets {
		if s.Section == "firstboot" {
			mfiles = append(mfiles, moduleFile{fmt.Sprintf("vmroot/firstboot/%02d-%s", i+1, s.Name), []byte(s.Body)})
		}
	}
	mod, err := Module(mfiles, o.Time)
	if err != nil {
		return err
	}
	edited := map[string][]byte{}
	for _, up := range []string{"BOOT.CFG", "EFI/BOOT/BOOT.CFG"} {
		p := bootCfg[up]
		if p == "" {
			continue
		}
		var ino uint64
		for _, f := range files {
			if f.path == p {
				ino = f.ino
			}
		}
		a, err := iso.Stat(ino)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", o.ISO, p, err)
		}
		if a.Size > 1<<20 {
			return fmt.Errorf("%s: %s is %d bytes; not a boot loader configuration", o.ISO, p, a.Size)
		}
		b := make([]byte, a.Size)
		if _, err := io.ReadFull(io.NewSectionReader(inoReaderAt{iso, ino}, 0, a.Size), b); err != nil {
			return fmt.Errorf("%s: %s: %w", o.ISO, p, err)
		}
		if edited[p], err = EditBootCfg(b, ModuleName, KSPath); err != nil {
			return fmt.Errorf("%s: %s: %w", o.ISO, p, err)
		}
	}
	content += int64(len(mod)) + 1<<20

	size := o.Size
	if size == 0 {
		size = (content + content/8 + 64<<20 + 2<<20 + 1<<20 - 1) &^ (1<<20 - 1)
	}
	if size%512 != 0 {
		return fmt.Errorf("disk size %d is not a whole number of sectors", size)
	}
	t := disk.Table{Scheme: disk.GPT, Sectors: size / 512}
	esp := disk.Partition{Number: 1, Start: 2048, GPTType: disk.TypeESP, Name: "EFI System"}
	esp.Sectors = (t.LastUsable()+1)&^2047 - esp.Start
	t.Partitions = []disk.Partition{esp}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("a %d-byte disk: %w", size, err)
	}
	vol := fat.New(esp.Sectors*512, fat.Options{Type: 32, Label: "ESXI", HiddenSectors: uint32(esp.Start),
		VolumeID: uint32(o.Time.Unix()), Time: o.Time})
	for _, d := range dirs {
		if err := vol.Mkdir(d); err != nil {
			return fmt.Errorf("%s: %w", o.ISO, err)
		}
	}
	for _, f := range files {
		src := mkdisk.FileSource(iso, f.ino, f.size)
		size := f.size
		if e, ok := edited[f.path]; ok {
			src = bytesSource(e)
			size = int64(len(e))
		}
		if err := vol.AddFile(f.path, size, src); err != nil {
			return fmt.Errorf("%s: %w", o.ISO, err)
		}
	}
	if err := vol.AddFile(ModuleName, int64(len(mod)), bytesSource(mod)); err != nil {
		return err
	}
	return output.Write(o.Output, o.Format, size, func(w *os.File) error {
		if err := t.Write(w); err != nil {
			return err
		}
		if err := vol.Write(w, esp.Start*512); err != nil {
			return fmt.Errorf("%s: %w", o.ISO, err)
		}
		return nil
	})
}

func bytesSource(b []byte) fat.Source {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(b))), nil }
}

type inoReaderAt struct {
	f   fsys.FS
	ino uint64
}

func (r inoReaderAt) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(r.ino, p, off) }
