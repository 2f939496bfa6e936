package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// adminToken is the token kioskmon serve wrote on its first start.
func (s *server) adminToken() string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin-token"))
	if err != nil {
		s.t.Fatalf("the first start wrote no admin token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// lastLine is the last non-empty line of out: what scripts read.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestIncidentsCLI drives an incident through its lifecycle with the CLI
// forms scripts rely on, as an engineer and a manager, and checks that a
// viewer is refused and that the timeline records who did what.
func TestIncidentsCLI(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	addKiosk(t, inv, "fz-gl-0001", "gulou-hall")
	s := newServer(t, inv, "--rules.disable")
	st, err := os.Stat(filepath.Join(s.dataDir, "admin-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v %v, want mode 0600", st, err)
	}
	if !strings.Contains(s.stderr.String(), "admin-token") {
		t.Errorf("the server did not log where the admin token is:\n%s", s.stderr.String())
	}
	srv := []string{"--server", "http://" + s.addr}
	as := func(token string, args ...string) []string {
		return append(append(args, srv...), "--token", token)
	}
	admin := s.adminToken()
	engineer := lastLine(kioskmonCLI(t, as(admin, "tokens", "add", "--name", "wang.fang", "--role", "engineer")...))
	manager := lastLine(kioskmonCLI(t, as(admin, "tokens", "add", "--name", "chen.jie", "--role", "manager")...))
	viewer := lastLine(kioskmonCLI(t, as(admin, "tokens", "add", "--name", "noc-wall", "--role", "viewer")...))

	id := lastLine(kioskmonCLI(t, as(engineer, "incidents", "report-fault", "--kiosk", "fz-gl-0001", "--fault", "hw.paper_jam",
		"--channel", "phone", "--at", "-30m")...))
	if _, err := strconv.Atoi(id); err != nil {
		t.Fatalf("report-fault printed %q as its last line, want the incident id", id)
	}
	// A viewer may read but not act: the CLI fails with the server's reason.
	cmd := exec.Command(kioskmonBin, as(viewer, "incidents", "ack", "--id", id)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "403") || !strings.Contains(stderr.String(), "engineer") {
		t.Fatalf("a viewer acknowledged: %v %s", err, stderr.String())
	}
	kioskmonCLI(t, as(engineer, "incidents", "ack", "--id", id, "--at", "-25m")...)
	kioskmonCLI(t, as(engineer, "incidents", "dispatch", "--id", id, "--at", "-24m", "--eta", "1h")...)
	kioskmonCLI(t, as(manager, "incidents", "pause", "--id", id, "--reason", "force_majeure", "--at", "-20m", "--note", "typhoon")...)
	kioskmonCLI(t, as(engineer, "incidents", "resume", "--id", id, "--at", "-15m")...)
	kioskmonCLI(t, as(engineer, "incidents", "arrive", "--id", id, "--at", "-10m")...)
	kioskmonCLI(t, as(engineer, "incidents", "resolve", "--id", id, "--at", "-5m")...)
	kioskmonCLI(t, as(engineer, "incidents", "close", "--id", id, "--satisfaction", "4")...)

	var list []struct {
		ID       int64  `json:"id"`
		State    string `json:"state"`
		Severity string `json:"severity"`
		Source   string `json:"source"`
		Channel  string `json:"channel"`
		Provider string `json:"provider"`
	}
	if err := json.Unmarshal([]byte(kioskmonCLI(t, as(viewer, "incidents", "list", "--json")...)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || strconv.FormatInt(list[0].ID, 10) != id || list[0].State != "closed" || list[0].Source != "person" ||
		list[0].Channel != "phone" || list[0].Provider != "acme-om" || list[0].Severity == "" {
		t.Fatalf("incidents list: %+v", list)
	}
	show := kioskmonCLI(t, as(viewer, "incidents", "show", "--id", id)...)
	for _, want := range []string{"acknowledged  wang.fang", "paused        chen.jie", "approver=chen.jie", "note=typhoon", "closed        wang.fang", "satisfaction=4"} {
		if !strings.Contains(show, want) {
			t.Errorf("incidents show lacks %q:\n%s", want, show)
		}
	}
	// The tokens survive a restart; the admin token is not issued again.
	s.stop()
	s.start()
	if got := s.adminToken(); got != admin {
		t.Fatal("a restart replaced the admin token")
	}
	if out := kioskmonCLI(t, as(engineer, "incidents", "list", "--open")...); strings.Contains(out, "hw.paper_jam") {
		t.Errorf("a closed incident is listed as open:\n%s", out)
	}
}
