package main

import (
	"os"
	"syscall"
)

// datasync makes f's data durable (fdatasync, as the Raft log store does).
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
