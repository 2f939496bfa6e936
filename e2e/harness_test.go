// Package e2e runs the real kioskmon binary, as a user would, with real
// clients: Prometheus as a remote-write client, Influx and text pushes, and
// kill -9 in the middle of a write load.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var kioskmonBin, exporterBin, simBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "kioskmon-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kioskmonBin = filepath.Join(dir, "kioskmon")
	exporterBin = filepath.Join(dir, "kiosk-exporter")
	simBin = filepath.Join(dir, "kiosk-sim")
	build := exec.Command("go", "build", "-o", dir, "../cmd/kioskmon", "../cmd/kiosk-exporter", "../cmd/kiosk-sim")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kioskmon, kiosk-exporter and kiosk-sim:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kioskmonCLI runs a kioskmon subcommand and returns its stdout.
func kioskmonCLI(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kioskmonBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kioskmon %s: %s\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// emptyInventory writes an inventory without kiosks in dir, for the
// simulator to add its fleet to, and returns its path.
func emptyInventory(t *testing.T, dir string) string {
	t.Helper()
	inv := filepath.Join(dir, "inventory.yml")
	if err := os.WriteFile(inv, []byte("version: v1\nkiosks: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return inv
}

// addKiosk adds a kiosk to the inventory and returns its new push token.
func addKiosk(t *testing.T, inventory, id, site string) string {
	t.Helper()
	kioskmonCLI(t, "kiosks", "add", "--inventory", inventory, "--id", id, "--site", site, "--district", "gulou", "--provider", "acme-om")
	out := strings.TrimSpace(kioskmonCLI(t, "kiosks", "token", "--inventory", inventory, "--id", id))
	lines := strings.Split(out, "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a running kioskmon serve.
type server struct {
	t         *testing.T
	addr      string
	dataDir   string
	inventory string
	cmd       *exec.Cmd
	stderr    *syncBuffer
	exited    chan struct{}
	extraArgs []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newServer(t *testing.T, inventory string, extraArgs ...string) *server {
	t.Helper()
	s := &server{t: t, addr: freePort(t), dataDir: t.TempDir(), inventory: inventory, extraArgs: extraArgs}
	s.start()
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) args() []string {
	return append([]string{"serve", "--listen", s.addr, "--data", s.dataDir, "--inventory", s.inventory,
		"--inventory.poll", "200ms", "--query.latency-offset", "1ms"}, s.extraArgs...)
}

// start runs the server and waits until /readyz answers.
func (s *server) start() {
	s.t.Helper()
	s.stderr = &syncBuffer{}
	s.cmd = exec.Command(kioskmonBin, s.args()...)
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("kioskmon exited during start: %s\n%s", s.cmd.ProcessState, s.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("kioskmon not ready after 60s:\n%s", s.stderr.String())
}

func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.t.Fatalf("kioskmon did not stop within 60s after SIGTERM:\n%s", s.stderr.String())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("kioskmon exited with %d after SIGTERM:\n%s", code, s.stderr.String())
	}
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// flush makes everything written so far searchable.
func (s *server) flush() {
	s.t.Helper()
	resp, err := http.Post(s.url("/internal/force_flush"), "", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
}

type exportedSeries struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export returns the raw samples of the series matching selector.
func (s *server) export(selector string) []exportedSeries {
	s.t.Helper()
	q := url.Values{"match[]": {selector}, "start": {"0"}}
	resp, err := http.Get(s.url("/api/v1/export?" + q.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("export %s: %d %s", selector, resp.StatusCode, b)
	}
	var out []exportedSeries
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var es exportedSeries
		if err := json.Unmarshal(sc.Bytes(), &es); err != nil {
			s.t.Fatalf("export line %q: %s", sc.Text(), err)
		}
		out = append(out, es)
	}
	return out
}

// waitExport polls export until ok accepts the result or the deadline passes.
func (s *server) waitExport(selector string, timeout time.Duration, ok func([]exportedSeries) bool) []exportedSeries {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var got []exportedSeries
	for time.Now().Before(deadline) {
		s.flush()
		got = s.export(selector)
		if ok(got) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("%s: condition not met within %s; last export: %+v\nserver log:\n%s", selector, timeout, got, s.stderr.String())
	return nil
}

// post sends body to path with the given headers and returns status and body.
func post(t *testing.T, ctx context.Context, target string, body []byte, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
