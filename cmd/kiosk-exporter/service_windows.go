//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

const serviceName = "kiosk-exporter"

// underServiceManager reports whether Windows' service control manager
// started the process.
func underServiceManager() bool {
	is, err := svc.IsWindowsService()
	return err == nil && is
}

// runAsService runs the exporter as a Windows service: the service manager's
// Stop and Shutdown cancel the context, and run's cleanup runs before the
// service reports Stopped. Logs go to kiosk-exporter.log beside the config.
func runAsService(args []string) int {
	code := 0
	err := svc.Run(serviceName, handler(func(ctx context.Context) {
		logPath := filepath.Join(filepath.Dir(configArg(args)), "kiosk-exporter.log")
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		var w io.Writer = io.Discard
		if err == nil {
			defer logFile.Close()
			w = logFile
		}
		code = run(ctx, args, nil, w, w)
	}))
	if err != nil {
		return 1
	}
	return code
}

type handler func(ctx context.Context)

// Execute implements svc.Handler.
func (h handler) Execute(_ []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case <-done:
			status <- svc.Status{State: svc.StopPending}
			cancel()
			return false, 0
		case r := <-requests:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: 10000}
				cancel()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
				}
				return false, 0
			}
		}
	}
}

// serviceCommand installs, removes, starts or stops the Windows service.
func serviceCommand(verb, config string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	switch verb {
	case "install":
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		config, err = filepath.Abs(config)
		if err != nil {
			return err
		}
		s, err := m.CreateService(serviceName, exe, mgr.Config{
			DisplayName: "kioskmon kiosk exporter", StartType: mgr.StartAutomatic,
			Description: "Reports the kiosk's devices, consumables, application, network and power to kioskmon.",
		}, "--config", config)
		if err != nil {
			return fmt.Errorf("install service: %w", err)
		}
		defer s.Close()
		// Restart after a crash: 5 s, 5 s, then 30 s; the failure count resets daily.
		return s.SetRecoveryActions([]mgr.RecoveryAction{
			{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
			{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
			{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		}, 86400)
	case "uninstall", "start", "stop":
		s, err := m.OpenService(serviceName)
		if err != nil {
			return fmt.Errorf("open service %s: %w", serviceName, err)
		}
		defer s.Close()
		switch verb {
		case "uninstall":
			return s.Delete()
		case "start":
			return s.Start()
		default:
			_, err := s.Control(svc.Stop)
			return err
		}
	}
	return fmt.Errorf("--service %q: use install, uninstall, start or stop", verb)
}
