package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

func kiosksCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runKiosks(args, &stdout, &stderr)
	return stdout.String(), err
}

func TestKiosksAddTokenList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yml")
	if _, err := kiosksCmd(t, "add", "--inventory", path, "--id", "gl-001", "--site", "gulou-hall", "--district", "gulou",
		"--provider", "acme-om", "--name", "Hall kiosk 1", "--lat", "26.08", "--lon", "119.29", "--distance-km", "12.5"); err != nil {
		t.Fatal(err)
	}
	if _, err := kiosksCmd(t, "add", "--inventory", path, "--id", "gl-002", "--site", "gulou-hall", "--district", "gulou", "--provider", "acme-om"); err != nil {
		t.Fatal(err)
	}
	if _, err := kiosksCmd(t, "add", "--inventory", path, "--id", "gl-001", "--site", "x", "--district", "d", "--provider", "p"); err == nil || !strings.Contains(err.Error(), "already in") {
		t.Fatalf("duplicate add: %v", err)
	}
	if _, err := kiosksCmd(t, "add", "--inventory", path, "--site", "x", "--district", "d", "--provider", "p"); err == nil || !strings.Contains(err.Error(), "missing --id") {
		t.Fatalf("missing id: %v", err)
	}

	out, err := kiosksCmd(t, "token", "--inventory", path, "--id", "gl-001")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	inv, err := inventory.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Sites) != 1 || inv.Sites[0].ID != "gulou-hall" {
		t.Fatalf("sites %+v, want the one added with the kiosk", inv.Sites)
	}
	if k, ok := inventory.NewIndex(inv).AuthenticateBearer(token); !ok || k.ID != "gl-001" || k.DistanceKm != 12.5 {
		t.Fatalf("printed token %q does not authenticate gl-001: %+v %v", token, k, ok)
	}
	if strings.Contains(mustRead(t, path), token) {
		t.Fatal("the token itself was written to the inventory")
	}
	if _, err := kiosksCmd(t, "token", "--inventory", path, "--id", "nope"); err == nil || !strings.Contains(err.Error(), "add it first") {
		t.Fatalf("token for unknown kiosk: %v", err)
	}

	table, err := kiosksCmd(t, "list", "--inventory", path)
	if err != nil {
		t.Fatal(err)
	}
	want := "ID      SITE        DISTRICT  PROVIDER  TOKEN  NAME\n" +
		"gl-001  gulou-hall  gulou     acme-om   yes    Hall kiosk 1\n" +
		"gl-002  gulou-hall  gulou     acme-om   no     \n"
	if table != want {
		t.Fatalf("list:\n%s\nwant:\n%s", table, want)
	}
	js, _ := kiosksCmd(t, "list", "--inventory", path, "--json")
	var kiosks []inventory.Kiosk
	if err := json.Unmarshal([]byte(js), &kiosks); err != nil || len(kiosks) != 2 {
		t.Fatalf("json list: %v %s", err, js)
	}
	if _, err := kiosksCmd(t, "remove"); err == nil || !strings.Contains(err.Error(), "unknown kiosks verb") {
		t.Fatalf("unknown verb: %v", err)
	}
}
