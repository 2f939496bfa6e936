// Package peertest finds the real programs that tests run as peers (NUT
// upsd, ippeveprinter, snmpd, nft, Prometheus) and hands out loopback ports.
//
// A missing peer skips the test with the command that installs it, except
// under `make test` and CI (KIOSKMON_REQUIRE_PEERS or CI set), where a
// missing peer is a failure: a skipped collector test there would hide a
// broken install script.
package peertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether a missing peer fails the test instead of skipping it.
func Required() bool {
	return os.Getenv("KIOSKMON_REQUIRE_PEERS") != "" || os.Getenv("CI") != ""
}

// Tool returns the path of the program name, looked up in PATH and then in
// dirs (daemons Debian keeps outside PATH, such as /lib/nut). Without it the
// test is skipped, or failed when peers are required.
func Tool(t testing.TB, name, debianPackage string, dirs ...string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return path
		}
	}
	Missing(t, fmt.Sprintf("%s not found: install it with `make deps` (Debian package %s)", name, debianPackage))
	return ""
}

// Missing skips the test with msg, or fails it when peers are required.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free UDP port: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
