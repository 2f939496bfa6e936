//go:build !unix && !windows

package host

import (
	"fmt"
	"runtime"
)

func diskUsage(mountpoint string) (float64, error) {
	return 0, fmt.Errorf("disk usage of %s: not supported on %s yet", mountpoint, runtime.GOOS)
}
