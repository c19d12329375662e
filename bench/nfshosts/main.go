// Command nfshosts connects N client hosts (source addresses 127.0.0.10,
// 127.0.0.11, ...) to an NFS server, mounts, walks to and reads a file
// on each, prints "ready" and holds the connections until stdin closes.
// bench/nfs.sh uses it to measure the server's memory per connected host,
// which libnfs cannot do (it cannot choose its source address).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/vmroot/vmroot/nfsexport/client"
	"github.com/vmroot/vmroot/nfsexport/mount"
	"github.com/vmroot/vmroot/nfsexport/nfs3"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2049", "server address (NFS and MOUNT)")
	export := flag.String("export", "/vmroot", "export path")
	n := flag.Int("n", 32, "number of hosts")
	file := flag.String("read", "", "file to read on every host (path below the export)")
	flag.Parse()
	ctx := context.Background()
	for i := 0; i < *n; i++ {
		local := fmt.Sprintf("127.0.0.%d", 10+i)
		c, err := client.Dial(ctx, "tcp", *addr, client.Options{LocalAddr: local})
		if err != nil {
			log.Fatalf("%s: %v", local, err)
		}
		m, err := client.Mount{C: c}.Mnt(ctx, *export)
		if err != nil || m.Status != mount.OK {
			log.Fatalf("%s: mount: %v %v", local, m, err)
		}
		nfs := client.NFS{C: c}
		fh := nfs3.FH(m.FH)
		for _, p := range strings.Split(*file, "/") {
			if p == "" {
				continue
			}
			r, err := nfs.Lookup(ctx, fh, p)
			if err != nil || r.Status != nfs3.OK {
				log.Fatalf("%s: lookup %s: %v %v", local, p, r.Status, err)
			}
			fh = r.Object
		}
		for off := uint64(0); ; {
			r, err := nfs.Read(ctx, fh, off, 1<<20)
			if err != nil || r.Status != nfs3.OK {
				log.Fatalf("%s: read: %v", local, err)
			}
			off += uint64(len(r.Data))
			if r.EOF {
				break
			}
		}
		defer c.Close()
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}
