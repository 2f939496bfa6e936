package wal

import (
	"os"
	"syscall"
)

// syncData flushes f's data. Segments are preallocated, so appending does not
// change their metadata and fdatasync avoids a journal commit.
func syncData(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
