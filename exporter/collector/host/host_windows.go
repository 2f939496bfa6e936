//go:build windows

package host

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows the same figures come from kernel32; the path arguments (the
// /proc files elsewhere) are unused.
var (
	kernel32                 = windows.NewLazySystemDLL("kernel32.dll")
	procGetSystemTimes       = kernel32.NewProc("GetSystemTimes")
	procGlobalMemoryStatusEx = kernel32.NewProc("GlobalMemoryStatusEx")
	procGetTickCount64       = kernel32.NewProc("GetTickCount64")
)

const defaultMountpoint = `C:\`

func filetime(f windows.Filetime) uint64 { return uint64(f.HighDateTime)<<32 | uint64(f.LowDateTime) }

// readCPUTicks returns busy and total 100ns ticks of all CPUs; kernel time
// includes idle time.
func readCPUTicks(string) (busy, total uint64, err error) {
	var idle, kernel, user windows.Filetime
	r, _, e := procGetSystemTimes.Call(uintptr(unsafe.Pointer(&idle)), uintptr(unsafe.Pointer(&kernel)), uintptr(unsafe.Pointer(&user)))
	if r == 0 {
		return 0, 0, fmt.Errorf("GetSystemTimes: %w", e)
	}
	total = filetime(kernel) + filetime(user)
	return total - filetime(idle), total, nil
}

type memoryStatusEx struct {
	Length               uint32
	MemoryLoad           uint32
	TotalPhys            uint64
	AvailPhys            uint64
	TotalPageFile        uint64
	AvailPageFile        uint64
	TotalVirtual         uint64
	AvailVirtual         uint64
	AvailExtendedVirtual uint64
}

func readMemInfo(string) (total, available uint64, err error) {
	m := memoryStatusEx{}
	m.Length = uint32(unsafe.Sizeof(m))
	r, _, e := procGlobalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&m)))
	if r == 0 {
		return 0, 0, fmt.Errorf("GlobalMemoryStatusEx: %w", e)
	}
	return m.TotalPhys, m.AvailPhys, nil
}

func readUptime(string) (float64, error) {
	ms, _, _ := procGetTickCount64.Call()
	return float64(ms) / 1000, nil
}
