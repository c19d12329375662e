package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vmroot/vmroot/internal/testimg"
)

// esxiTree writes the files of a synthetic ESXi-like installer ISO.
func instTree(t *testing.T, bootCfg, efi bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "iso")
	w := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "bootstate=0\ntitle=Loading ESXi installer\ntimeout=5\nprefix=\nkernel=/b.b00\nkernelopt=runweasel ks=cdrom:/KS_OLD.CFG cdromBoot\nmodules=/jumpstrt.gz --- /useropts.gz --- /s.v00 --- /tools.t00\nbuild=8.0.2\n"
	if bootCfg {
		w("BOOT.CFG", []byte(cfg))
	}
	w("EFI/BOOT/BOOT.CFG", []byte(strings.Replace(cfg, "prefix=", "prefix=/", 1)))
	if efi {
		w("EFI/BOOT/BOOTX64.EFI", instPattern(1, 150000))
	}
	w("B.B00", instPattern(2, 300000))
	w("JUMPSTRT.GZ", instPattern(3, 20000))
	w("USEROPTS.GZ", instPattern(4, 100))
	w("S.V00", instPattern(5, 2<<20))
	w("TOOLS.T00", instPattern(6, 700000))
	w("UPGRADE/PROFILE.XML", []byte("<profile/>\n"))
	w("UPGRADE/precheck.py", []byte("print('ok')\n"))
	w("ISOLINUX.CFG", []byte("DEFAULT menu.c32\n"))
	return dir
}

func instPattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 7)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func instISO(t *testing.T, tree string) string {
	t.Helper()
	iso := filepath.Join(t.TempDir(), "esxi.iso")
	testimg.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "ESXI-8.0", "-o", iso, tree)
	return iso
}

func instSnippets(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "snippets")
	for name, body := range map[string]string{
		"pre/20-second.sh":        "echo pre-second\n",
		"pre/10-first.sh":         "echo pre-first\n",
		"post/50-post.py":         "print('post-python')\n",
		"firstboot/10-ntp.sh":     "esxcli system ntp set -s pool.ntp.org\n",
		"firstboot/05-license.sh": "vim-cmd vimsvc/license --set=XXXXX\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	return dir
}

var instConfigDrive = filepath.Join("..", "..", "testdata", "installer", "configdrive")

// checkInstallerDisk checks a raw installer disk: partition table, FAT,
// boot configuration, module and the ISO's files.
func instCheckDisk(t *testing.T, raw, tree string, wantSize int64) {
	t.Helper()
	st, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	if wantSize != 0 && st.Size() != wantSize {
		t.Errorf("disk is %d bytes, want %d", st.Size(), wantSize)
	}
	sg := testimg.Run(t, "sgdisk", "-v", "-p", raw)
	if !strings.Contains(sg, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", sg)
	}
	rows := regexp.MustCompile(`(?m)^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+(\S+)`).FindAllStringSubmatch(sg, -1)
	if len(rows) != 1 || rows[0][1] != "1" || rows[0][2] != "2048" || rows[0][4] != "EF00" {
		t.Fatalf("want one EF00 partition from sector 2048:\n%s", sg)
	}
	var end int64
	fmt.Sscan(rows[0][3], &end)
	fsck := testimg.Run(t, "fsck.fat", "-n", "-v", buildExtractPart(t, raw, 2048, end-2048+1))
	if !strings.Contains(fsck, "32 bit entries") {
		t.Errorf("not FAT32:\n%s", fsck)
	}
	img := raw + "@@1048576"
	for _, p := range []string{"::/BOOT.CFG", "::/EFI/BOOT/BOOT.CFG"} {
		cfg := testimg.Run(t, "mtype", "-i", img, p)
		for _, want := range []string{
			"\nkernelopt=runweasel cdromBoot ks=file:///vmroot/KS.CFG\n",
			"\nmodules=/jumpstrt.gz --- /useropts.gz --- /s.v00 --- /tools.t00 --- /vmroot.tgz\n",
			"\nkernel=/b.b00\n",
		} {
			if !strings.Contains(cfg, want) {
				t.Errorf("%s lacks %q:\n%s", p, want, cfg)
			}
		}
		if strings.Count(cfg, "vmroot.tgz") != 1 || strings.Contains(cfg, "KS_OLD") {
			t.Errorf("%s:\n%s", p, cfg)
		}
	}

	// Every ISO file, byte for byte, under the name the ISO gives it.
	out := filepath.Join(t.TempDir(), "esp")
	testimg.Run(t, "mcopy", "-s", "-n", "-i", img, "::/", out)
	filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		if strings.HasSuffix(rel, "BOOT.CFG") {
			return nil
		}
		if !testimg.SameBytes(t, p, filepath.Join(out, rel)) {
			t.Errorf("%s differs on the disk", rel)
		}
		return nil
	})

	// The module: GNU tar, root-owned, explicit directories, fixed modes.
	mod := filepath.Join(out, "vmroot.tgz")
	list := testimg.Run(t, "tar", "--numeric-owner", "-tvzf", mod)
	wantList := []string{"drwxr-xr-x 0/0 .* vmroot/$", "-rw-r--r-- 0/0 .* vmroot/KS.CFG$", "drwxr-xr-x 0/0 .* vmroot/firstboot/$",
		"-rw-r--r-- 0/0 .* vmroot/firstboot/00-network.sh$"}
	lines := strings.Split(strings.TrimSpace(list), "\n")
	for i, w := range wantList {
		if i >= len(lines) || !regexp.MustCompile(w).MatchString(lines[i]) {
			t.Errorf("tar -tvzf line %d: want %q in:\n%s", i, w, list)
		}
	}
	f, _ := os.Open(mod)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 512)
	io.ReadFull(zr, hdr)
	if string(hdr[257:265]) != "ustar  \x00" {
		t.Errorf("tar magic %q: not the GNU format", hdr[257:265])
	}
	x := t.TempDir()
	testimg.Run(t, "tar", "-xzf", mod, "-C", x)
	ks, _ := os.ReadFile(filepath.Join(x, "vmroot", "KS.CFG"))
	instCheckKickstart(t, string(ks))
}

func instCheckKickstart(t *testing.T, ks string) {
	t.Helper()
	order := []string{"vmaccepteula\n", "install --firstdisk --overwritevmfs\n", "network --bootproto=static --device=52:54:00:12:34:56 --ip=192.0.2.10 --netmask=255.255.255.0 --gateway=192.0.2.1 --nameserver=192.0.2.53 --hostname=esx01.lab.example\n",
		"rootpw --iscrypted $6$", "reboot\n",
		"%pre --interpreter=busybox\n# 10-first.sh\necho pre-first\n",
		"%pre --interpreter=busybox\n# 20-second.sh\necho pre-second\n",
		"%post --interpreter=python\n# 50-post.py\nprint('post-python')\n",
		"%firstboot --interpreter=busybox\n# network.sh\n#!/bin/sh\n",
		"esxcli network vswitch standard portgroup set -p 'pg-storage' --vlan-id 100\n",
		"%firstboot --interpreter=busybox\n# 05-license.sh\n",
		"%firstboot --interpreter=busybox\n# 10-ntp.sh\nesxcli system ntp set -s pool.ntp.org\n",
	}
	m := regexp.MustCompile(`\nrootpw --iscrypted (\$6\$([./0-9A-Za-z]{16})\$[./0-9A-Za-z]{86})\n`).FindStringSubmatch(ks)
	if m == nil {
		t.Fatalf("no crypted rootpw line:\n%s", ks)
	}
	if _, err := exec.LookPath("python3"); err == nil {
		out := testimg.Run(t, "python3", "-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))", "S3cret'pass", m[1])
		if strings.TrimSpace(out) != m[1] {
			t.Errorf("rootpw hash %s does not match the metadata's admin_pass (crypt(3) gives %s)", m[1], out)
		}
	}
	pos := 0
	for _, s := range order {
		i := strings.Index(ks[pos:], s)
		if i < 0 {
			t.Fatalf("kickstart lacks %q after offset %d:\n%s", s, pos, ks)
		}
		pos += i + len(s)
	}
}

func TestInstaller(t *testing.T) {
	testimg.Need(t, "xorriso", "sgdisk", "fsck.fat", "mtype", "mcopy", "tar")
	tree := instTree(t, true, true)
	iso := instISO(t, tree)
	snip := instSnippets(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		size int64
	}{{"auto", 0}, {"64MiB", 64}, {"4GiB", 4096}} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".img")
			args := []string{"installer", iso, "-o", out, "--config-drive", instConfigDrive, "--snippets", snip}
			if c.size != 0 {
				args = append(args, "--size", fmt.Sprint(c.size))
			}
			ok(t, args...)
			instCheckDisk(t, out, tree, c.size<<20)
			if c.size == 0 {
				// Sized to the content (about 3.3 MiB here) plus headroom:
				// an eighth, 64 MiB and the GPT's 2 MiB, in whole MiB.
				fi, _ := os.Stat(out)
				if fi.Size()%(1<<20) != 0 || fi.Size() < 69<<20 || fi.Size() > 72<<20 {
					t.Errorf("auto-sized disk is %d bytes", fi.Size())
				}
			}
			if c.size == 4096 {
				var st struct{ blocks int64 }
				if fi, err := os.Stat(out); err == nil {
					st.blocks = instFileBlocks(fi)
				}
				if st.blocks*512 > 64<<20 {
					t.Errorf("4 GiB disk allocates %d bytes: not sparse", st.blocks*512)
				}
			}
		})
	}
	// Past 4 GiB too: the converters have no size cap of their own.
	for _, c := range []struct {
		format string
		mib    int64
	}{{"vmdk", 100}, {"qcow2", 100}, {"vmdk:streamOptimized", 4200}, {"qcow2", 4200}} {
		t.Run(fmt.Sprintf("%s-%dMiB", c.format, c.mib), func(t *testing.T) {
			testimg.Need(t, "qemu-img")
			kind, sub, _ := strings.Cut(c.format, ":")
			out := filepath.Join(dir, "disk."+kind)
			ok(t, "installer", iso, "-o", out, "--format", c.format, "--size", fmt.Sprint(c.mib),
				"--meta-data", filepath.Join(instConfigDrive, "openstack/latest/meta_data.json"),
				"--network-data", filepath.Join(instConfigDrive, "openstack/latest/network_data.json"), "--snippets", snip)
			info := testimg.Run(t, "qemu-img", "info", out)
			if !strings.Contains(info, "file format: "+kind) || !strings.Contains(info, fmt.Sprintf("(%d bytes)", c.mib<<20)) ||
				sub != "" && !strings.Contains(info, "create type: "+sub) {
				t.Fatalf("qemu-img info:\n%s", info)
			}
			if fi, err := os.Stat(out); err != nil {
				t.Fatal(err)
			} else if fi.Size() > 16<<20 {
				t.Errorf("%s holds about 4 MiB of data, stored in %d bytes", out, fi.Size())
			}
			testimg.Run(t, "qemu-img", "check", out)
			raw := filepath.Join(t.TempDir(), "disk.raw")
			testimg.Run(t, "qemu-img", "convert", "-f", kind, "-O", "raw", out, raw)
			instCheckDisk(t, raw, tree, c.mib<<20)
		})
	}
	t.Run("plain ISO9660 names", func(t *testing.T) {
		plain := filepath.Join(t.TempDir(), "plain.iso")
		testimg.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "--norock", "-o", plain, tree)
		out := filepath.Join(t.TempDir(), "p.img")
		ok(t, "installer", plain, "-o", out, "--config-drive", instConfigDrive, "--size", "64")
		list := testimg.Run(t, "mdir", "-b", "-/", "-i", out+"@@1048576", "::/")
		for _, n := range []string{"::/BOOT.CFG", "::/UPGRADE/PRECHECK.PY", "::/EFI/BOOT/BOOTX64.EFI", "::/S.V00", "::/vmroot.tgz"} {
			if !strings.Contains(list, n+"\n") {
				t.Errorf("mdir lacks %s (names must stay as the ISO holds them, ;1 stripped):\n%s", n, list)
			}
		}
		if strings.Contains(list, ";1") || strings.Contains(list, "precheck") {
			t.Errorf("ISO9660 names not mapped back:\n%s", list)
		}
	})
	t.Run("ks-template", func(t *testing.T) {
		tmpl := filepath.Join(t.TempDir(), "ks.tmpl")
		os.WriteFile(tmpl, []byte("vmaccepteula\nrootpw {{.RootPW}}\n# host {{.Hostname}}\n{{range .Section \"pre\"}}%pre\n{{.Body}}{{end}}"), 0o644)
		out := filepath.Join(t.TempDir(), "t.img")
		ok(t, "installer", iso, "-o", out, "--config-drive", instConfigDrive, "--snippets", snip, "--ks-template", tmpl, "--size", "64")
		x := t.TempDir()
		testimg.Run(t, "mcopy", "-i", out+"@@1048576", "::/vmroot.tgz", x)
		testimg.Run(t, "tar", "-xzf", filepath.Join(x, "vmroot.tgz"), "-C", x)
		ks, _ := os.ReadFile(filepath.Join(x, "vmroot/KS.CFG"))
		if string(ks) != "vmaccepteula\nrootpw S3cret'pass\n# host esx01.lab.example\n%pre\necho pre-first\n%pre\necho pre-second\n" {
			t.Errorf("KS.CFG from the template:\n%s", ks)
		}
	})
}

func TestInstallerBadInput(t *testing.T) {
	testimg.Need(t, "xorriso")
	good := instISO(t, instTree(t, true, true))
	noCfg := instISO(t, instTree(t, false, true))
	noEFI := instISO(t, instTree(t, true, false))
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.iso")
	os.WriteFile(text, bytes.Repeat([]byte("not an iso\n"), 5000), 0o644)
	badNet := filepath.Join(dir, "network_data.json")
	os.WriteFile(badNet, []byte(`{"links":[{"id":"a","type":"infiniband","ethernet_mac_address":"52:54:00:00:00:01"}]}`), 0o644)
	meta := filepath.Join(instConfigDrive, "openstack/latest/meta_data.json")
	out := filepath.Join(dir, "out", "disk.img")
	os.MkdirAll(filepath.Dir(out), 0o755)
	for _, c := range []struct {
		name, want string
		args       []string
	}{
		{"no BOOT.CFG", "BOOT.CFG", []string{noCfg, "--config-drive", instConfigDrive}},
		{"not bootable", "not bootable", []string{noEFI, "--config-drive", instConfigDrive}},
		{"not an ISO", "notes.iso: not an ISO9660 image", []string{text, "--config-drive", instConfigDrive}},
		{"unknown link type", `network_data.json: link "a": unknown link type "infiniband"`, []string{good, "--meta-data", meta, "--network-data", badNet}},
		{"too small", "too small for FAT32", []string{good, "--config-drive", instConfigDrive, "--size", "20"}},
		{"content does not fit", "does not fit", []string{good, "--config-drive", instConfigDrive, "--size", "36"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"installer", "-o", out}, c.args...)
			if c.name == "content does not fit" {
				// A FAT32 volume of about 33 MiB cannot take 5 MiB of
				// content plus the module only if the content is larger:
				// use a big file.
				tree := instTree(t, true, true)
				os.WriteFile(filepath.Join(tree, "BIG.V00"), instPattern(9, 40<<20), 0o644)
				args[3] = instISO(t, tree)
			}
			named := args[3] // the ISO
			if strings.Contains(c.want, "json") {
				named = badNet
			}
			msg := fails(t, named, args...)
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q lacks %q", msg, c.want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Errorf("partial output left behind: %v", ents)
			}
		})
	}
}
