package prepare

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
)

// InitramfsReport says whether an initramfs can mount its root over NFS.
type InitramfsReport struct {
	Path     string   // inside the image
	Tool     string   // "initramfs-tools", "dracut" or "unknown"
	NFSBoot  bool     // has a way to mount an NFS root (scripts/nfs, dracut's nfs module)
	BootVar  string   // BOOT= from conf/initramfs.conf ("" when absent)
	Modules  []string // NFS modules found, as files or built in ("nfs", "nfsv3", "sunrpc")
	NICs     []string // NIC drivers found (vmxnet3, e1000, e1000e, virtio_net)
	Problems []string // what stops an NFS boot, each with what to do
	Notes    []string // what works but is worth knowing
}

// OK reports whether nothing stops an NFS boot.
func (r *InitramfsReport) OK() bool { return len(r.Problems) == 0 }

var (
	nfsModules = []string{"sunrpc", "nfs", "nfsv3"}
	nicModules = []string{"vmxnet3", "e1000", "e1000e", "virtio_net"}
)

// CheckInitramfs reads an initramfs image (see Walk) and reports what an
// NFS root boot needs from it.
func CheckInitramfs(ra io.ReaderAt, size int64, name string, lim Limits) (*InitramfsReport, error) {
	r := &InitramfsReport{Path: name, Tool: "unknown"}
	found := map[string]bool{}
	var builtin, initramfsConf []byte
	keep := func(n string) bool {
		return n == "conf/initramfs.conf" || strings.HasSuffix(n, "/modules.builtin") && strings.HasPrefix(n, "lib/modules/") ||
			strings.HasPrefix(n, "usr/lib/modules/") && strings.HasSuffix(n, "/modules.builtin")
	}
	err := Walk(ra, size, lim, keep, func(e Entry) error {
		n := e.Name
		switch {
		case n == "scripts/nfs":
			found["scripts/nfs"] = true
		case n == "conf/initramfs.conf":
			initramfsConf = e.Data
		case strings.HasSuffix(n, "/modules.builtin"):
			builtin = append(builtin, e.Data...)
			builtin = append(builtin, '\n')
		case n == "usr/lib/dracut" || strings.HasPrefix(n, "usr/lib/dracut/"):
			found["dracut"] = true
		case strings.HasSuffix(n, "/nfsroot") || strings.HasSuffix(n, "/nfs-lib.sh"):
			found["dracut-nfs"] = true
		case n == "scripts/local" || n == "scripts/init-top" || n == "conf/arch.conf":
			found["initramfs-tools"] = true
		}
		if strings.Contains(n, "/modules/") {
			if m := moduleName(n); m != "" {
				found["mod:"+m] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, line := range strings.Split(string(builtin), "\n") {
		if m := moduleName(line); m != "" {
			found["mod:"+m] = true
		}
	}
	switch {
	case found["initramfs-tools"] || found["scripts/nfs"] || initramfsConf != nil:
		r.Tool = "initramfs-tools"
		r.NFSBoot = found["scripts/nfs"]
	case found["dracut"]:
		r.Tool = "dracut"
		r.NFSBoot = found["dracut-nfs"]
	}
	r.BootVar = confValue(initramfsConf, "BOOT")
	for _, m := range nfsModules {
		if found["mod:"+m] {
			r.Modules = append(r.Modules, m)
		}
	}
	for _, m := range nicModules {
		if found["mod:"+m] {
			r.NICs = append(r.NICs, m)
		}
	}
	var missing []string
	for _, m := range nfsModules {
		if !found["mod:"+m] {
			missing = append(missing, m)
		}
	}
	switch r.Tool {
	case "initramfs-tools":
		if !r.NFSBoot {
			r.Problems = append(r.Problems, "no scripts/nfs (BOOT=nfs support): reinstall initramfs-tools-core and run update-initramfs -u -k all in the image")
		}
		if len(missing) > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("no NFS modules (%s, neither files nor built in): set MODULES=netboot (or list nfs and nfsv3 in /etc/initramfs-tools/modules), then update-initramfs -u",
				strings.Join(missing, ", ")))
		}
		if r.NFSBoot && r.BootVar != "nfs" {
			r.Notes = append(r.Notes, fmt.Sprintf("conf/initramfs.conf has BOOT=%s: boot with boot=nfs on the kernel command line (a host's args in vmroot.toml), or set BOOT=nfs in /etc/initramfs-tools/initramfs.conf and run update-initramfs -u", orNone(r.BootVar)))
		}
		if r.NFSBoot {
			r.Notes = append(r.Notes, "initramfs-tools mounts with klibc nfsmount, which asks the portmapper (port 111) for the MOUNT port and rejects mountport=: serve portmap on 111 and NFS on 2049")
		}
	case "dracut":
		if !r.NFSBoot {
			r.Problems = append(r.Problems, "dracut image without its nfs module: add add_dracutmodules+=\" nfs \" to /etc/dracut.conf.d/nfs.conf and run dracut -f; boot with root=nfs:SERVER:/EXPORT")
		}
		if len(missing) > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("no NFS modules (%s): add add_drivers+=\" nfs nfsv3 \" to /etc/dracut.conf.d/nfs.conf and run dracut -f", strings.Join(missing, ", ")))
		}
	default:
		r.Problems = append(r.Problems, "not an initramfs-tools or dracut image: it needs its own way to bring up the network and mount an NFS root (see the busybox initramfs in the project's notes)")
		if len(missing) > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("no NFS modules (%s) inside it", strings.Join(missing, ", ")))
		}
	}
	if len(r.NICs) == 0 {
		r.Notes = append(r.Notes, "no driver for vmxnet3, e1000, e1000e or virtio_net in it: unless the kernel has the VM's NIC driver built in, set MODULES=netboot (initramfs-tools) so network drivers are included")
	}
	return r, nil
}

// moduleName returns "nfs" for ".../kernel/fs/nfs/nfs.ko" (any of .ko,
// .ko.xz, .ko.zst, .ko.gz), "" for other names.
func moduleName(p string) string {
	b := path.Base(strings.TrimSpace(p))
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if m, ok := strings.CutSuffix(b, ext); ok {
			return strings.ReplaceAll(m, "-", "_")
		}
	}
	return ""
}

// confValue returns VAR's value from a shell-style KEY=VALUE file.
func confValue(conf []byte, key string) string {
	v := ""
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if k, val, ok := strings.Cut(l, "="); ok && k == key {
			v = strings.Trim(val, `"'`)
		}
	}
	return v
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}
