//go:build windows

package host

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// diskUsage returns the share of the volume in use (C:\ and the like).
func diskUsage(mountpoint string) (float64, error) {
	path, err := windows.UTF16PtrFromString(mountpoint)
	if err != nil {
		return 0, err
	}
	var free, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(path, &free, &total, &totalFree); err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", mountpoint, err)
	}
	if total == 0 {
		return 0, nil
	}
	return 1 - float64(free)/float64(total), nil
}
