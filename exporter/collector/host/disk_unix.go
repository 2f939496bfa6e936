//go:build unix

package host

import (
	"fmt"
	"syscall"
)

// diskUsage returns the share of the file system's blocks in use, as df
// counts it (blocks reserved for root count as not available).
func diskUsage(mountpoint string) (float64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(mountpoint, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", mountpoint, err)
	}
	used := st.Blocks - st.Bfree
	denom := used + st.Bavail
	if denom == 0 {
		return 0, nil
	}
	return float64(used) / float64(denom), nil
}
