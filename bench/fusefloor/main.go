// Command fusefloor mounts go-fuse's own loopback filesystem of a
// directory with the mount settings vmroot uses, as a benchmark
// reference: the cost of FUSE round trips through go-fuse with no union
// behind them. Usage: fusefloor DIR MOUNTPOINT (stays in the foreground
// until SIGINT or SIGTERM).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: fusefloor DIR MOUNTPOINT")
		os.Exit(2)
	}
	// As vmroot mount does on this machine.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2))
	}
	root, err := gofs.NewLoopbackRoot(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusefloor:", err)
		os.Exit(1)
	}
	t := time.Minute
	srv, err := gofs.Mount(os.Args[2], root, &gofs.Options{
		EntryTimeout: &t, AttrTimeout: &t, NegativeTimeout: &t,
		MountOptions: fuse.MountOptions{
			FsName: "fusefloor", Name: "fusefloor", DirectMount: true,
			AllowOther: true, Options: []string{"default_permissions"},
			MaxWrite: 1 << 20, MaxReadAhead: 1 << 20,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusefloor:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-c; srv.Unmount() }()
	srv.Wait()
}
