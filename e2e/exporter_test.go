package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type exporterProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	listen string
	config string
}

func startExporter(t *testing.T, config, listen string) *exporterProc {
	t.Helper()
	e := &exporterProc{t: t, log: &syncBuffer{}, exited: make(chan struct{}), listen: listen, config: config}
	e.cmd = exec.Command(exporterBin, "--config", config)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() { e.signal(syscall.SIGKILL) })
	return e
}

func (e *exporterProc) signal(sig syscall.Signal) {
	select {
	case <-e.exited:
	default:
		e.cmd.Process.Signal(sig)
		<-e.exited
	}
}

// metric returns the value of a sample line of the exporter's /metrics.
func (e *exporterProc) metric(name string) (string, bool) {
	resp, err := http.Get("http://" + e.listen + "/metrics")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			return f[1], true
		}
	}
	return "", false
}

// TestExporterPushSurvivesOutageAndKill9: kioskmon goes away for a while and
// the exporter is killed with -9 during the outage; once both are back every
// gather of the outage arrives, each exactly once.
func TestExporterPushSurvivesOutageAndKill9(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	addKiosk(t, inv, "k0", "hall")
	token := addKiosk(t, inv, "k1", "hall")
	os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600)
	s := newServer(t, inv)
	listen := freePort(t)
	config := filepath.Join(dir, "exporter.yml")
	os.WriteFile(config, []byte(fmt.Sprintf(`version: v1
interval: 1s
listen: %s
push:
  url: %s
  kiosk_id: k1
  token_file: %s
  queue_dir: %s
`, listen, s.url(""), filepath.Join(dir, "token"), filepath.Join(dir, "queue"))), 0o600)
	e := startExporter(t, config, listen)
	selector := `kiosk_exporter_build_info{kiosk="k1",site="hall"}`
	s.waitExport(selector, 30*time.Second, func(got []exportedSeries) bool { return len(got) == 1 && len(got[0].Timestamps) >= 3 })

	s.stop()
	outageStart := time.Now()
	time.Sleep(3 * time.Second)
	e.signal(syscall.SIGKILL)
	e = startExporter(t, config, listen)
	time.Sleep(3 * time.Second)
	outageEnd := time.Now()
	s.start()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if v, ok := e.metric("kiosk_exporter_queue_oldest_timestamp_seconds"); ok && v == "0" {
			if pushed, _ := e.metric("kiosk_exporter_push_samples_total"); pushed != "0" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter's queue did not drain within 60s:\n%s", e.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.signal(syscall.SIGTERM)
	if !strings.Contains(e.log.String(), "push queue holds samples from before") {
		t.Errorf("the restarted exporter did not report its queued samples:\n%s", e.log.String())
	}

	got := s.waitExport(selector, 30*time.Second, func(got []exportedSeries) bool { return len(got) == 1 })
	ts := got[0].Timestamps
	slices.Sort(ts)
	during := 0
	for i, v := range ts {
		if i > 0 && v == ts[i-1] {
			t.Errorf("sample at %d stored twice", v)
		}
		if i > 0 && v-ts[i-1] > 2500 {
			t.Errorf("gap of %d ms before %s: gathers are missing", v-ts[i-1], time.UnixMilli(v).Format(time.StampMilli))
		}
		if v > outageStart.UnixMilli() && v < outageEnd.UnixMilli() {
			during++
		}
	}
	// 6 s of outage at 1 s, less the exporter's restart.
	if during < 4 {
		t.Errorf("%d gathers from the outage arrived, want at least 4; timestamps %v", during, ts)
	}
}
