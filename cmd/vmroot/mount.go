package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	vfs "github.com/vmroot/vmroot/fs"
	"github.com/vmroot/vmroot/internal/dirfs"
	"github.com/vmroot/vmroot/internal/fsys"
	"github.com/vmroot/vmroot/internal/image"
	"github.com/vmroot/vmroot/overlay"
)

const notifyEnv = "VMROOT_MOUNT_NOTIFY_FD"

// cacheTimeout is how long the kernel may trust names and attributes it
// got from the mount. Lower layers never change and the diff is locked to
// this one process, whose every change goes through the kernel (which
// updates or drops what it cached), so a long timeout loses nothing.
const cacheTimeout = time.Minute

func init() {
	var (
		diff        string
		layers      []string
		partNum     int
		foreground  bool
		passthrough bool
		debug       bool
	)
	c := &cobra.Command{
		Use:   "mount [--diff DIR] [--layer DIR|IMAGE]... [-p N] IMAGE MOUNTPOINT",
		Short: "Mount IMAGE (or a directory) with FUSE, with an optional copy-on-write diff",
		Long: `Mount the filesystem inside IMAGE at MOUNTPOINT. Without --diff the mount
is read-only; with it, changes land in DIR in aufs's rw-branch format. Each
--layer adds a read-only layer between the diff and IMAGE (first = top).
IMAGE and layers may be images or directories. Without -f the command
returns once the mount is ready and the server keeps running in the
background; stop it with "vmroot umount MOUNTPOINT".`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return runMount(c, args[0], args[1], diff, layers, partNum, foreground, passthrough, debug)
		},
	}
	c.Flags().StringVar(&diff, "diff", "", "writable diff directory (aufs rw branch)")
	c.Flags().StringArrayVar(&layers, "layer", nil, "read-only layer (directory or image), top first; repeatable")
	partFlag(c, &partNum)
	c.Flags().BoolVarP(&foreground, "foreground", "f", false, "stay in the foreground")
	c.Flags().BoolVar(&passthrough, "passthrough", true, "let the kernel do I/O on files whose data is in the diff directly (root only); --passthrough=false serves all I/O through vmroot")
	c.Flags().BoolVar(&debug, "debug", false, "log FUSE requests")
	rootCmd.AddCommand(c)
}

// layer is one opened read-only layer.
type layer struct {
	fs    fsys.FS
	close func() error
	watch string // image file to watch for changes, "" for directories
	stamp string
}

func stampOf(p string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d:%d:%d:%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
}

func openLayer(c *cobra.Command, p string, partNum int) (*layer, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		d, err := dirfs.Open(p)
		if err != nil {
			return nil, err
		}
		return &layer{fs: d, close: d.Close}, nil
	}
	m, err := openImageFS(c, p, partNum)
	if err != nil {
		return nil, err
	}
	return &layer{fs: m.FS, close: m.Close, watch: p, stamp: stampOf(p)}, nil
}

func runMount(c *cobra.Command, img, mnt, diff string, layerArgs []string, partNum int, fg, passthrough, debug bool) error {
	if !fg && os.Getenv(notifyEnv) == "" {
		return daemonize(c)
	}
	// Every FUSE request is a round trip with the process making the
	// syscall, so the server has little to run in parallel, while each
	// extra P makes the scheduler wake a spinning thread at every
	// goroutine hand-off, taking CPU from that process. On 2 CPUs one P
	// cut the server's CPU for an 8,000-file untar by a fifth. Half the
	// CPUs, unless GOMAXPROCS says otherwise.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2))
	}
	ready := func(err error) error {
		if fdStr := os.Getenv(notifyEnv); fdStr != "" {
			f := os.NewFile(3, "notify")
			if err != nil {
				fmt.Fprintln(f, err)
				f.Close()
				os.Exit(1) // the parent reports it
			} else {
				fmt.Fprintln(f, "ok")
			}
			f.Close()
		}
		return err
	}
	if fi, err := os.Stat(mnt); err != nil {
		return ready(err)
	} else if !fi.IsDir() {
		return ready(fmt.Errorf("%s: not a directory", mnt))
	}
	var ls []*layer
	defer func() {
		for _, l := range ls {
			l.close()
		}
	}()
	for _, p := range layerArgs {
		l, err := openLayer(c, p, image.Auto)
		if err != nil {
			return ready(fmt.Errorf("layer %s: %w", p, err))
		}
		ls = append(ls, l)
	}
	base, err := openLayer(c, img, partNum)
	if err != nil {
		return ready(err)
	}
	ls = append(ls, base)
	var lowers []fsys.FS
	for _, l := range ls {
		lowers = append(lowers, l.fs)
	}
	if diff != "" {
		if fi, err := os.Stat(diff); err != nil {
			return ready(fmt.Errorf("diff %s: %w", diff, err))
		} else if !fi.IsDir() {
			return ready(fmt.Errorf("diff %s: not a directory", diff))
		}
	}
	o, err := overlay.New(overlay.Config{Diff: diff, Lowers: lowers})
	if err != nil {
		return ready(err)
	}
	defer o.Close()
	root := os.Geteuid() == 0
	srv, err := vfs.Mount(mnt, o, vfs.Options{
		EntryTimeout: cacheTimeout, AttrTimeout: cacheTimeout,
		AllowOther: root, DefaultPermissions: root,
		Passthrough: passthrough && root, Debug: debug,
		FsName: "vmroot:" + img,
	})
	if err != nil {
		return ready(fmt.Errorf("%s: %w", mnt, err))
	}
	if err := srv.WaitMount(); err != nil {
		return ready(fmt.Errorf("%s: %w", mnt, err))
	}
	ready(nil)
	if os.Getenv(notifyEnv) != "" {
		// Detach stdio so the parent's pipes close.
		null, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		syscall.Dup2(int(null.Fd()), 0)
		syscall.Dup2(int(null.Fd()), 1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	changed := make(chan string, 1)
	go watchImages(ls, changed)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	var exitErr error
	select {
	case <-sig:
	case p := <-changed:
		// The view would no longer be consistent: refuse to go on.
		exitErr = fmt.Errorf("%s: image changed under the mount; unmounted %s", p, mnt)
	case <-done:
		return nil
	}
	for i := 0; i < 50; i++ {
		if err := srv.Unmount(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	<-done
	return exitErr
}

func watchImages(ls []*layer, changed chan<- string) {
	for {
		time.Sleep(2 * time.Second)
		for _, l := range ls {
			if l.watch != "" && stampOf(l.watch) != l.stamp {
				changed <- l.watch
				return
			}
		}
	}
}

// daemonize re-runs the command in the background and waits until the
// mount is ready (or failed) on a pipe.
func daemonize(c *cobra.Command) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), notifyEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	line = strings.TrimSpace(line)
	if err != nil && !errors.Is(err, io.EOF) || line != "ok" {
		cmd.Wait()
		if line == "" {
			return errors.New("mount failed")
		}
		return errors.New(line)
	}
	cmd.Process.Release()
	return nil
}
