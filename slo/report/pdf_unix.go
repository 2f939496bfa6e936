//go:build unix

package report

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts Chromium and the helpers it starts (zygote,
// renderer, GPU) in a process group of their own, so that a timeout kills
// them all, not only the browser process.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// killProcessGroup kills what is left of the group after Chromium exited.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH: nothing left, as usual
	}
}
