package rpc

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sock is a TCP connection's socket. It is in one of two modes:
//
//   - netpoll: nc, the net package's connection, as for any Go server.
//   - raw: fd, a descriptor of the same socket in blocking mode, with
//     the net package's connection closed, so that the socket is no
//     longer registered with the runtime's epoll.
//
// A connection goes raw when a read returns data (the client is busy) and
// back to netpoll when a raw read finds nothing for rawWait (the client
// paused): an idle connection costs no thread and its deadlines are the
// netpoller's, while a busy one is served by blocking system calls. For a
// client sending one call at a time (libnfs reading file after file, a
// booting kernel), the netpoller's way cost most of the server's time
// per call: the reader parks, another thread's epoll_wait wakes on the
// next call, takes a P and schedules it, and meanwhile the socket's
// epoll events also wake the runtime's netpoll thread for replies and
// calls that a blocking read already took. Now the client's next call
// wakes the reading thread directly, and nothing else.
//
// Only the reader changes modes (toRaw, toNetpoll), so it reads nc and fd
// without locks. Writes hold swap shared and mode changes hold it
// exclusively; fdMu guards nc and fd against shutdown and close from
// other goroutines. A raw descriptor is only closed by the connection's
// own end (closeAll), never from another goroutine, so that its number
// cannot be reused under a thread still reading it: others shut the
// socket down instead, which wakes and fails every read and write in
// either mode.
type sock struct {
	swap    sync.RWMutex
	fdMu    sync.Mutex
	nc      net.Conn
	fd      int // raw mode: the blocking descriptor; -1 in netpoll mode
	rdl     time.Time
	noRaw   atomic.Bool // not TCP, not Linux, or stopping: stay with the netpoller
	closed  atomic.Bool // closeNow or closeAll: errors are net.ErrClosed
	counted atomic.Bool // in tcpConns until closeAll
	wt      time.Duration
}

// Raw mode is for a client that is busy alone. A thread blocked in a raw
// read keeps its P until sysmon takes it back, which costs the other
// connections more than the netpoller's wake-ups save: with 8 and 32
// clients reading a boot set at once, even one raw connection at a time
// made the runs 20-35% longer. So a connection goes raw only while at
// most rawCrowd TCP connections are open (a lone client's NFS
// connection and, say, its MOUNT connection), and at most rawMax at
// once (each holds a thread in a blocking read).
var (
	tcpConns  atomic.Int32
	rawActive atomic.Int32
	rawMax    = int32(max(1, runtime.GOMAXPROCS(0)-1))
)

const rawCrowd = 2

// rawWait is how long a raw read waits in the kernel (SO_RCVTIMEO)
// before the connection goes back to the netpoller. (A variable for
// tests.)
var rawWait = 20 * time.Millisecond

func newSock(nc net.Conn, writeTimeout time.Duration) *sock {
	_, tcp := nc.(*net.TCPConn)
	k := &sock{nc: nc, fd: -1, wt: writeTimeout}
	k.noRaw.Store(!tcp || !rawSockets)
	if tcp {
		k.counted.Store(true)
		tcpConns.Add(1)
	}
	return k
}

// Read reads from the socket in its current mode (reader only).
func (k *sock) Read(p []byte) (int, error) {
	for {
		if k.fd < 0 {
			if k.nc == nil {
				return 0, net.ErrClosed // toNetpoll failed
			}
			n, err := k.nc.Read(p)
			if n > 0 && err == nil && !k.noRaw.Load() {
				k.toRaw()
			}
			return n, err
		}
		n, err := rawRead(k.fd, p)
		if err == nil {
			if n == 0 && len(p) > 0 {
				if k.closed.Load() {
					return 0, net.ErrClosed
				}
				return 0, io.EOF
			}
			return n, nil
		}
		if err != syscall.EAGAIN {
			if k.closed.Load() {
				return 0, net.ErrClosed
			}
			return 0, err
		}
		// Nothing for rawWait: the client paused.
		if err := k.toNetpoll(); err != nil {
			return 0, err
		}
	}
}

// setReadDeadline sets the read deadline (reader only); raw reads keep
// it by handing over to the netpoller within rawWait.
func (k *sock) setReadDeadline(t time.Time) {
	k.rdl = t
	if k.fd < 0 && k.nc != nil {
		k.nc.SetReadDeadline(t)
	}
}

// writeBuffers writes bufs whole, within the write timeout.
func (k *sock) writeBuffers(bufs [][]byte) error {
	k.swap.RLock()
	defer k.swap.RUnlock()
	if k.fd < 0 && k.nc == nil {
		return net.ErrClosed // toNetpoll failed
	}
	if k.fd < 0 {
		k.nc.SetWriteDeadline(time.Now().Add(k.wt))
		nb := net.Buffers(bufs)
		_, err := nb.WriteTo(k.nc)
		return err
	}
	err := rawWritev(k.fd, bufs, time.Now().Add(k.wt))
	if err != nil && k.closed.Load() {
		return net.ErrClosed // as the net package says after Close
	}
	return err
}

// toRaw takes the socket off the netpoller (reader only). On failure it
// stays in netpoll mode.
func (k *sock) toRaw() {
	if tcpConns.Load() > rawCrowd {
		return
	}
	if rawActive.Add(1) > rawMax {
		rawActive.Add(-1)
		return
	}
	fd, err := rawDup(k.nc, rawWait, k.wt)
	if err != nil {
		rawActive.Add(-1)
		k.noRaw.Store(true)
		return
	}
	k.swap.Lock()
	k.fdMu.Lock()
	if k.noRaw.Load() {
		// stopped meanwhile: stay with the netpoller and its deadlines
		syscall.SetNonblock(fd, true) // O_NONBLOCK is nc's too
		k.fdMu.Unlock()
		k.swap.Unlock()
		syscall.Close(fd)
		rawActive.Add(-1)
		return
	}
	k.nc.Close() // deregisters from epoll; the socket lives on in fd
	k.nc, k.fd = nil, fd
	k.fdMu.Unlock()
	k.swap.Unlock()
}

// toNetpoll gives the socket back to the netpoller (reader only).
func (k *sock) toNetpoll() error {
	k.swap.Lock()
	defer k.swap.Unlock()
	f := os.NewFile(uintptr(k.fd), "") // blocking: not registered by os
	nc, err := net.FileConn(f)         // dups it, non-blocking, registered
	k.fdMu.Lock()
	f.Close()
	k.fd = -1
	rawActive.Add(-1)
	if err != nil {
		k.fdMu.Unlock()
		return err
	}
	k.nc = nc
	k.fdMu.Unlock()
	nc.SetReadDeadline(k.rdl)
	return nil
}

// stop wakes the reader for good: it finds end of file or its deadline
// passed. The connection stays in netpoll mode from then on.
func (k *sock) stop() {
	k.fdMu.Lock()
	defer k.fdMu.Unlock()
	k.noRaw.Store(true)
	if k.fd >= 0 {
		syscall.Shutdown(k.fd, shutRead)
	} else if k.nc != nil {
		k.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// closeNow fails every read and write, at once, from any goroutine.
func (k *sock) closeNow() {
	k.fdMu.Lock()
	defer k.fdMu.Unlock()
	k.noRaw.Store(true)
	k.closed.Store(true)
	if k.fd >= 0 {
		syscall.Shutdown(k.fd, shutBoth)
	} else if k.nc != nil {
		k.nc.Close()
	}
}

// closeAll closes the socket once reader and writer are done.
func (k *sock) closeAll() {
	if k.counted.Swap(false) {
		tcpConns.Add(-1)
	}
	k.fdMu.Lock()
	defer k.fdMu.Unlock()
	k.noRaw.Store(true)
	k.closed.Store(true)
	if k.fd >= 0 {
		syscall.Close(k.fd)
		k.fd = -1
		rawActive.Add(-1)
	} else if k.nc != nil {
		k.nc.Close()
	}
}
