package rpc

import (
	"syscall"
	"time"
)

// sockTimeouts sets the socket's receive and send timeouts
// (SO_RCVTIMEO, SO_SNDTIMEO) to wait. They only matter while the socket
// is in blocking mode (see conn.setBlocking).
func sockTimeouts(rc syscall.RawConn, wait time.Duration) bool {
	tv := syscall.NsecToTimeval(wait.Nanoseconds())
	ok := false
	err := rc.Control(func(fd uintptr) {
		s := int(fd)
		ok = syscall.SetsockoptTimeval(s, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv) == nil &&
			syscall.SetsockoptTimeval(s, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv) == nil
	})
	return err == nil && ok
}

// sockNonblock sets or clears O_NONBLOCK on the socket.
func sockNonblock(rc syscall.RawConn, nonblocking bool) bool {
	ok := false
	err := rc.Control(func(fd uintptr) { ok = syscall.SetNonblock(int(fd), nonblocking) == nil })
	return err == nil && ok
}

// sockShutdown shuts the socket down (shutRead or shutBoth), waking a
// thread blocked reading it.
func sockShutdown(rc syscall.RawConn, how int) {
	rc.Control(func(fd uintptr) { syscall.Shutdown(int(fd), how) })
}

const (
	shutRead = syscall.SHUT_RD
	shutBoth = syscall.SHUT_RDWR
)
