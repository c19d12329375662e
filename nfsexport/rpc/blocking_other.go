//go:build !linux

package rpc

import (
	"syscall"
	"time"
)

// Blocking reads are Linux only (see blocking_linux.go and
// conn.setBlocking): elsewhere sockets stay with the netpoller.
func sockTimeouts(syscall.RawConn, time.Duration) bool { return false }
func sockNonblock(syscall.RawConn, bool) bool          { return false }
func sockShutdown(syscall.RawConn, int)                {}

const (
	shutRead = 0
	shutBoth = 2
)
