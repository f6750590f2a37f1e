package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// stopWithGoRun makes a node started by `go run` stop (SIGTERM, a graceful
// stop) when the go command does: go run runs the binary as its child and
// does not pass on signals when it is killed, which left the node serving
// after the user stopped what they started. Only under go run: a node
// started by a shell, systemd or a container outlives its parent as
// usual.
func stopWithGoRun() {
	ppid := os.Getppid()
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return
	}
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() != ppid { // the parent ended before the request took
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
