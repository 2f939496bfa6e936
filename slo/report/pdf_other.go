//go:build !unix

package report

import "os/exec"

// Without process groups the context only kills Chromium itself.
func ownProcessGroup(*exec.Cmd) {}

func killProcessGroup(*exec.Cmd) {}
