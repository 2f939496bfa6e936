//go:build !windows

package main

import "errors"

// On Linux the exporter runs under systemd (deploy/systemd); these are the
// Windows service hooks.
func underServiceManager() bool { return false }

func runAsService([]string) int { return 1 }

func serviceCommand(verb, config string) error {
	return errors.New("--service manages a Windows service; on Linux use deploy/systemd/kiosk-exporter.service")
}
