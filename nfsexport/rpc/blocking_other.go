//go:build !linux

package rpc

import (
	"net"
	"syscall"
	"time"
)

// Raw sockets are Linux only (see sock and blocking_linux.go): elsewhere
// connections stay with the netpoller and these are never called.
const rawSockets = false

const (
	shutRead = 0
	shutBoth = 2
)

func rawDup(net.Conn, time.Duration, time.Duration) (int, error) { return -1, syscall.EINVAL }
func rawRead(int, []byte) (int, error)                           { return 0, syscall.EINVAL }
func rawWritev(int, [][]byte, time.Time) error                   { return syscall.EINVAL }
