package main

import (
	"os"
	"syscall"
)

// fileBlocks is the number of 512-byte blocks the file allocates.
func instFileBlocks(fi os.FileInfo) int64 { return fi.Sys().(*syscall.Stat_t).Blocks }
