package peertest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// PostgresBin is where Debian's postgresql-15 keeps initdb and pg_ctl.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// Postgres starts a throwaway PostgreSQL 15 (Debian's postgresql-15) on a
// free loopback port, trusting local connections, and returns the DSN of
// its postgres database for user kioskmon. It stops when the test ends.
// PostgreSQL refuses to run as root: as root, the server runs as the
// package's postgres user.
func Postgres(t testing.TB) string {
	t.Helper()
	initdb := Tool(t, "initdb", "postgresql-15", PostgresBin)
	pgctl := Tool(t, "pg_ctl", "postgresql-15", PostgresBin)
	dir, err := os.MkdirTemp("", "kioskmon-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	asUser := func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			Missing(t, "running as root, PostgreSQL needs the postgres user that Debian's postgresql-15 creates")
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		asUser = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	if out, err := asUser(initdb, "-D", data, "-U", "kioskmon", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on -c synchronous_commit=on", port, dir)
	if out, err := asUser(pgctl, "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { asUser(pgctl, "-D", data, "-m", "fast", "-w", "stop").Run() })
	return fmt.Sprintf("postgres://kioskmon@127.0.0.1:%d/postgres?sslmode=disable", port)
}
