package rpc

import (
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rawSockets says whether TCP connections may leave the netpoller (see
// sock).
const rawSockets = true

const (
	shutRead = syscall.SHUT_RD
	shutBoth = syscall.SHUT_RDWR
)

// rawDup returns a blocking close-on-exec descriptor of nc's socket
// whose reads wait at most rcv and whose writes wait at most snd
// without progress (SO_RCVTIMEO, SO_SNDTIMEO). O_NONBLOCK belongs to the
// open file, which nc shares: the caller closes nc before anything else
// reads or writes it.
func rawDup(nc net.Conn, rcv, snd time.Duration) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, syscall.EINVAL
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	rtv := syscall.NsecToTimeval(rcv.Nanoseconds())
	stv := syscall.NsecToTimeval(snd.Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &rtv); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &stv); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// rawRead is read(2), retried on EINTR.
func rawRead(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// rawWritev writes bufs whole with writev(2) on a blocking descriptor,
// failing with os.ErrDeadlineExceeded once deadline has passed.
func rawWritev(fd int, bufs [][]byte, deadline time.Time) error {
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	for len(bufs) > 0 {
		n, err := unix.Writev(fd, bufs)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN: // SO_SNDTIMEO passed without progress
			n = 0
		case err != nil:
			return os.NewSyscallError("writev", err)
		}
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) > 0 && !time.Now().Before(deadline) {
			return os.ErrDeadlineExceeded
		}
	}
	return nil
}
