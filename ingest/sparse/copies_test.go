package sparse_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/ingest"
	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/ingest/sparse"
	"github.com/kioskmon/kioskmon/ingest/store"
)

type storeWriter struct{ st *store.Storage }

func (w storeWriter) Write(rows []store.Row) (func() error, error) {
	return func() error { return nil }, w.st.AddRows(rows)
}

type directory struct{ ix *inventory.Index }

func (d directory) Index() *inventory.Index { return d.ix }

// The rules' expressions give the same results from the copies as from the
// original series, at every instant, on real storage: series that flip, go
// silent, send NaN and staleness markers, across a restart of the ingest.
func TestCopiesAnswerAsTheOriginals(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Config{DataPath: filepath.Join(dir, "data"), Retention: 365 * 24 * time.Hour, SearchLatencyOffset: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Created() {
		t.Fatal("a new storage is not reported as created")
	}
	rules := []string{
		`max by (kiosk, site, device) (kiosk_peripheral_state{state="fault"} == 1)`,
		`max by (kiosk) (kiosk_paper_state{state="empty"} == 1 or kiosk_paper_jam == 1)`,
		`min by (kiosk) (kiosk_ups_battery_runtime_seconds < 600) unless on (kiosk) (min by (kiosk) (kiosk_ups_battery_charge_ratio < 0.9))`,
		`max by (kiosk) (abs(kiosk_host_clock_offset_seconds) > 120)`,
		`count by (site) (kiosk_app_up == 0)`,
	}
	inv := &inventory.Inventory{Version: "v1", Sites: []inventory.Site{{ID: "s1"}, {ID: "s2"}}}
	const kiosks = 6
	for i := range kiosks {
		inv.Kiosks = append(inv.Kiosks, inventory.Kiosk{ID: fmt.Sprintf("k%d", i), Site: fmt.Sprintf("s%d", 1+i%2), District: "d", Provider: "p",
			TokenSHA256: inventory.HashToken(fmt.Sprintf("t%d", i))})
	}
	conditions := filepath.Join(dir, "rule-conditions.json")
	start := time.Now().Add(-6 * time.Hour).Truncate(time.Minute)
	newIngest := func(conds *sparse.Set) *httptest.Server {
		h, err := ingest.New(ingest.Config{}, directory{inventory.NewIndex(inv)}, storeWriter{st}, metrics.NewSet(), log.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		h.CopyConditions(conds)
		mux := http.NewServeMux()
		h.Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	conds, err := sparse.Open(conditions, rules, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	srv := newIngest(conds)

	// Each kiosk sends a scrape every 30 s for 4 hours, in order, except
	// when it is silent for a while; values change rarely, as faults do.
	rng := rand.New(rand.NewPCG(1, 2))
	type kioskState struct {
		fault     [2]float64
		empty     float64
		jam       float64
		runtime   float64
		charge    float64
		offset    float64
		up        float64
		silentFor int
	}
	state := make([]kioskState, kiosks)
	flip := func(v *float64) {
		if rng.IntN(25) == 0 {
			*v = 1 - *v
		}
	}
	// A random walk pulled back to the middle of [lo, hi], so it crosses
	// the thresholds again and again.
	walk := func(v *float64, step, lo, hi float64) {
		*v = min(hi, max(lo, *v+step*(rng.Float64()-0.5)-0.1*(*v-(lo+hi)/2)))
	}
	const steps = 4 * 120
	restartAt := steps / 2
	for step := range steps {
		at := start.Add(time.Duration(step) * 30 * time.Second).UnixMilli()
		if step == restartAt {
			// A restart: a new Set from the file, its live copies found in
			// the storage, as kioskmon serve does.
			st.MakeSearchable()
			samples, err := st.Query(context.Background(), sparse.LiveCopiesQuery, time.UnixMilli(at))
			if err != nil {
				t.Fatal(err)
			}
			if conds, err = sparse.Open(conditions, rules, time.Now()); err != nil {
				t.Fatal(err)
			}
			live := make([]sparse.LiveCopy, len(samples))
			for i, s := range samples {
				live[i] = sparse.LiveCopy{Labels: s.Labels, LastMs: int64(s.Value * 1000)}
			}
			if n := conds.Seed(live); n == 0 {
				t.Fatal("no live copy found at the restart")
			}
			srv.Close()
			srv = newIngest(conds)
			// Every condition ends at the first scrape after the restart:
			// only the seeded Set knows to end the copies.
			for k := range state {
				s := &state[k]
				s.fault, s.empty, s.jam, s.up, s.runtime, s.offset, s.silentFor = [2]float64{}, 0, 0, 1, 900, 0, 0
			}
		}
		for k := range kiosks {
			s := &state[k]
			if s.silentFor > 0 {
				s.silentFor--
				continue
			}
			if rng.IntN(200) == 0 {
				s.silentFor = 4 + rng.IntN(20) // 2 to 12 minutes: past the lookback, or not
			}
			flip(&s.fault[0])
			flip(&s.fault[1])
			flip(&s.empty)
			flip(&s.jam)
			flip(&s.up)
			if step == 0 {
				s.runtime, s.charge, s.up = 900, 1, 1
			}
			walk(&s.runtime, 120, 300, 1200)
			walk(&s.charge, 0.1, 0.7, 1)
			walk(&s.offset, 80, -300, 300)
			var b strings.Builder
			line := func(name string, v float64, labels ...string) {
				b.WriteString(name)
				b.WriteByte('{')
				for i := 0; i+1 < len(labels); i += 2 {
					fmt.Fprintf(&b, "%s=%q,", labels[i], labels[i+1])
				}
				fmt.Fprintf(&b, "} %s %d\n", strings.ReplaceAll(fmt.Sprint(v), "+Inf", "Inf"), at)
			}
			for d := range 2 {
				dev := fmt.Sprintf("dev%d", d)
				line("kiosk_peripheral_state", s.fault[d], "device", dev, "state", "fault")
				line("kiosk_peripheral_state", 1-s.fault[d], "device", dev, "state", "ok")
			}
			line("kiosk_paper_state", s.empty, "state", "empty")
			line("kiosk_paper_jam", s.jam)
			line("kiosk_ups_battery_runtime_seconds", s.runtime)
			charge := s.charge
			if rng.IntN(50) == 0 {
				charge = math.NaN()
			}
			line("kiosk_ups_battery_charge_ratio", charge)
			line("kiosk_host_clock_offset_seconds", s.offset)
			line("kiosk_app_up", s.up)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/import/prometheus", strings.NewReader(b.String()))
			req.Header.Set("Authorization", fmt.Sprintf("Bearer t%d", k))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("push: %s", resp.Status)
			}
		}
	}
	st.MakeSearchable()

	render := func(samples []store.Sample) string {
		var out []string
		for _, s := range samples {
			var ls []string
			for _, l := range s.Labels {
				ls = append(ls, l.Name+"="+l.Value)
			}
			slices.Sort(ls)
			out = append(out, strings.Join(ls, ",")+fmt.Sprintf(" %g", s.Value))
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	compared, nonEmpty := 0, 0
	for step := 0; step < steps+20; step++ {
		at := start.Add(time.Duration(step)*30*time.Second + 7*time.Second)
		for _, rule := range rules {
			rewritten := conds.Rewrite(rule, at)
			if rewritten == rule {
				t.Fatalf("not rewritten at %s: %s", at, rule)
			}
			want, err := st.Query(context.Background(), rule, at)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Query(context.Background(), rewritten, at)
			if err != nil {
				t.Fatal(err)
			}
			if render(got) != render(want) {
				t.Fatalf("at %s (step %d)\n%s\nfrom the originals:\n%s\nfrom the copies (%s):\n%s", at, step, rule, render(want), rewritten, render(got))
			}
			compared++
			if len(want) > 0 {
				nonEmpty++
			}
		}
	}
	if nonEmpty < compared/3 {
		t.Fatalf("only %d of %d comparisons had a result: the data does not exercise the conditions", nonEmpty, compared)
	}
	t.Logf("%d instants × rules compared, %d with a result", compared, nonEmpty)
}
