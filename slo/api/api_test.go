package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/slo/access"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

type fixture struct {
	l      *ledger.Ledger
	srv    *httptest.Server
	tokens map[string]string // by role name
	denied []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	st, adminPath, err := access.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := os.ReadFile(adminPath)
	f := &fixture{l: l, tokens: map[string]string{"admin": strings.TrimSpace(string(admin))}}
	for _, r := range []access.Role{access.Viewer, access.Engineer, access.Manager} {
		if f.tokens[r.String()], err = st.Add(r.String()+"-1", r, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	(&Handler{Ledger: l, Access: st, Severities: []string{"urgent", "moderate", "minor"},
		Describe: func(kiosk, fault string) (ledger.OpenRequest, error) {
			if kiosk != "k1" && kiosk != "k2" {
				return ledger.OpenRequest{}, fmt.Errorf("kiosk %q is not in the inventory", kiosk)
			}
			if fault != "hw.paper_out" {
				return ledger.OpenRequest{}, fmt.Errorf("fault %q is not in the rulebook", fault)
			}
			return ledger.OpenRequest{Kiosk: kiosk, Site: "s1", District: "d1", Provider: "p" + kiosk, Fault: fault,
				Category: "hardware", Severity: "moderate"}, nil
		},
		Denied: func(r string) { f.denied = append(f.denied, r) },
	}).Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request as role ("" for none) and checks the status and that
// the body contains want.
func (f *fixture) do(t *testing.T, role, method, path, body string, wantStatus int, want string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[role])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus || !strings.Contains(string(b), want) {
		t.Errorf("%s %s as %q: %d %s, want %d with %q", method, path, role, resp.StatusCode, b, wantStatus, want)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

func TestIncidentsAPI(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	for _, k := range []string{"k1", "k2"} {
		if _, _, err := f.l.OpenIncident(context.Background(), ledger.OpenRequest{Kiosk: k, Site: "s1", District: "d1", Provider: "p" + k,
			Fault: "hw.paper_out", Category: "hardware", Severity: "moderate", Source: "alert", Channel: "system", Actor: "kioskmon", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	f.do(t, "", "GET", "/api/v1/incidents", "", 401, "needs a token")
	f.do(t, "viewer", "GET", "/api/v1/incidents?provider=pk2", "", 200, `"kiosk":"k2"`)
	f.do(t, "viewer", "GET", "/api/v1/incidents?provider=pk9", "", 200, `"incidents":[]`)
	f.do(t, "viewer", "GET", "/api/v1/incidents?from=2026-11-04T00:00:00Z", "", 200, `"incidents":[]`)
	f.do(t, "viewer", "GET", "/api/v1/incidents?from=monday", "", 400, `from \"monday\": give RFC 3339 or Unix seconds`)
	f.do(t, "viewer", "GET", "/api/v1/incidents?limit=0", "", 400, `limit \"0\": give 1 to 100000`)
	f.do(t, "viewer", "GET", "/api/v1/incidents/1", "", 200, `"kind":"opened"`)
	f.do(t, "viewer", "GET", "/api/v1/incidents/99", "", 404, `no such incident`)
}

func TestLifecycleOverTheAPI(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Second)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }

	f.do(t, "viewer", "POST", "/api/v1/incidents", `{"kiosk":"k1","fault":"hw.paper_out","channel":"phone"}`, 403, "role viewer")
	f.do(t, "engineer", "POST", "/api/v1/incidents", `{"kiosk":"k9","fault":"hw.paper_out","channel":"phone"}`, 400, `kiosk \"k9\" is not in the inventory`)
	f.do(t, "engineer", "POST", "/api/v1/incidents", `{"kiosk":"k1","fault":"hw.paper_out","channel":"fax"}`, 400, `channel \"fax\"`)
	f.do(t, "engineer", "POST", "/api/v1/incidents", `{"kiosk":"k1","fault":"hw.paper_out","channel":"phone","extra":1}`, 400, `unknown field`)
	out := f.do(t, "engineer", "POST", "/api/v1/incidents",
		fmt.Sprintf(`{"kiosk":"k1","fault":"hw.paper_out","channel":"phone","at":%q}`, ts(-time.Hour)), 201, `"source":"person"`)
	id := int64(out["data"].(map[string]any)["incident"].(map[string]any)["id"].(float64))
	// A second report of the same open fault joins the incident.
	f.do(t, "engineer", "POST", "/api/v1/incidents", fmt.Sprintf(`{"kiosk":"k1","fault":"hw.paper_out","channel":"wechat","at":%q}`, ts(-50*time.Minute)),
		200, `"created":false`)

	ev := func(role, body string, status int, want string) {
		t.Helper()
		f.do(t, role, "POST", fmt.Sprintf("/api/v1/incidents/%d/events", id), body, status, want)
	}
	ev("engineer", fmt.Sprintf(`{"kind":"acknowledged","at":%q}`, ts(-45*time.Minute)), 201, `"actor":"engineer-1"`)
	ev("engineer", `{"kind":"opened"}`, 400, `record one of`)
	ev("engineer", fmt.Sprintf(`{"kind":"dispatched","at":%q}`, ts(-40*time.Minute)), 400, "committed_arrival is required")
	ev("engineer", fmt.Sprintf(`{"kind":"dispatched","at":%q,"committed_arrival":%q}`, ts(-40*time.Minute), ts(time.Hour)), 201, `"committed_arrival"`)
	ev("engineer", fmt.Sprintf(`{"kind":"paused","reason":"force_majeure","at":%q}`, ts(-35*time.Minute)), 403, "manager's decision")
	ev("manager", fmt.Sprintf(`{"kind":"paused","reason":"force_majeure","at":%q}`, ts(-35*time.Minute)), 201, `"approver":"manager-1"`)
	ev("engineer", fmt.Sprintf(`{"kind":"resumed","at":%q}`, ts(-30*time.Minute)), 201, `"resumed"`)
	ev("manager", `{"kind":"severity_changed","severity":"catastrophic"}`, 400, `not one of urgent`)
	ev("manager", fmt.Sprintf(`{"kind":"severity_changed","severity":"urgent","at":%q}`, ts(-29*time.Minute)), 201, `"severity":"urgent"`)
	ev("engineer", fmt.Sprintf(`{"kind":"arrived","at":%q}`, ts(-20*time.Minute)), 201, `"proof":"api"`)
	ev("engineer", fmt.Sprintf(`{"kind":"acknowledged","at":%q}`, ts(-19*time.Minute)), 409, "is on_site")
	ev("engineer", fmt.Sprintf(`{"kind":"resolved","at":%q}`, ts(-10*time.Minute)), 201, `"resolved"`)
	ev("engineer", `{"kind":"closed","satisfaction":9}`, 400, "1 to 5")
	ev("engineer", `{"kind":"closed","satisfaction":5,"note":"follow-up visit"}`, 201, `"satisfaction":5`)
	ev("engineer", `{"kind":"resumed"}`, 409, "closed")

	inc, events, err := f.l.Incident(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.State != ledger.StateClosed || inc.Severity != "urgent" {
		t.Errorf("incident after the lifecycle: %+v", inc)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind+":"+e.Actor)
	}
	want := "opened:engineer-1 reported:engineer-1 acknowledged:engineer-1 dispatched:engineer-1 paused:manager-1 resumed:engineer-1 " +
		"severity_changed:manager-1 arrived:engineer-1 resolved:engineer-1 closed:engineer-1"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("audit trail:\n got %s\nwant %s", got, want)
	}
	if n, err := f.l.Verify(context.Background()); err != nil || n != int64(len(events)) {
		t.Errorf("Verify: %d events, %v", n, err)
	}
	if strings.Count(strings.Join(f.denied, ","), "forbidden") != 2 {
		t.Errorf("denials counted: %v", f.denied)
	}
}
