package evaluator

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/rulebook"
)

const book = `version: v1
interval: 1m
faults:
  - id: kiosk.offline
    category: hardware
    name_zh: 终端离线
    name_en: Kiosk offline (no data)
    expr: offline_expr
    for: 2m
    severity: {db12-1060: urgent, fujian-2022: severe}
    remedy: [go there]
  - id: hw.paper_out
    category: hardware
    name_zh: 机器缺纸
    name_en: Out of paper
    expr: paper_expr
    for: 2m
    keep_firing_for: 2m
    severity: {db12-1060: moderate, fujian-2022: general}
    remedy: [refill]
    scope: [peripheral]
  - id: sw.service_unresponsive
    category: software
    name_zh: 服务无响应和闪退
    name_en: Service unresponsive or app crashes
    expr: app_expr
    severity: {db12-1060: urgent, fujian-2022: severe}
    remedy: [restart]
    scope: [service_hours]
`

// fakeStorage answers each rule's expression with the kiosks the test sets;
// the storage's own query path is tested in ingest/store.
type fakeStorage struct {
	mu      sync.Mutex
	kiosks  map[string][]string // expression -> kiosks it returns
	service []string
}

func (f *fakeStorage) set(expr string, kiosks ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kiosks[expr] = kiosks
}

func (f *fakeStorage) Query(_ context.Context, q string, _ time.Time) ([]Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ks := f.kiosks[strings.TrimSpace(q)]
	if strings.Contains(q, "kiosk_service_mode") {
		ks = f.service
	}
	var out []Sample
	for _, k := range ks {
		out = append(out, Sample{Labels: []Label{{"kiosk", k}, {"site", "s-" + k}, {"district", "d"}, {"provider", "p"}}, Value: 1})
	}
	return out, nil
}

type recorder struct{ got []Transition }

func (r *recorder) Transition(_ context.Context, t Transition) error {
	r.got = append(r.got, t)
	return nil
}

func newEvaluator(t *testing.T, state string, st *fakeStorage, isOpen func(string, time.Time) bool) (*Evaluator, *recorder) {
	t.Helper()
	rb, err := rulebook.Parse([]byte(book), "book.yml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Rulebook: rb, StateFile: state, IsOpen: isOpen}, st, log.NewNopLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e.AddSink(rec)
	return e, rec
}

func states(e *Evaluator) map[string]string {
	out := map[string]string{}
	for _, a := range e.Alerts() {
		out[a.Labels["alertname"]+"/"+a.Labels["kiosk"]] = a.State
	}
	return out
}

func TestLifecycleAndRestart(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	state := filepath.Join(t.TempDir(), "alerts.json")
	e, rec := newEvaluator(t, state, st, nil)
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

	st.set("paper_expr", "k1")
	e.Eval(context.Background(), at(0))
	if s := states(e)["hw_paper_out/k1"]; s != StatePending {
		t.Fatalf("at 0m: %q", s)
	}
	e.Eval(context.Background(), at(1))
	e.Eval(context.Background(), at(2))
	a := e.Alerts()[0]
	if a.State != StateFiring || !a.ActiveAt.Equal(at(0)) || a.Labels["severity"] != "moderate" || a.Labels["fault"] != "hw.paper_out" {
		t.Fatalf("at 2m: %+v", a)
	}
	if a.Annotations["summary"] != "Out of paper at kiosk k1 (s-k1)" {
		t.Fatalf("annotations not expanded: %v", a.Annotations)
	}

	// kioskmon restarts: the alert is still firing, with its original start;
	// the sinks see it again as still firing (the ledger's incident is
	// opened once), not as a new alert.
	e2, rec2 := newEvaluator(t, state, st, nil)
	e2.Eval(context.Background(), at(3))
	a = e2.Alerts()[0]
	if a.State != StateFiring || !a.ActiveAt.Equal(at(0)) || len(rec2.got) != 1 ||
		rec2.got[0].From != StateFiring || rec2.got[0].To != StateFiring || !rec2.got[0].Alert.ActiveAt.Equal(at(0)) {
		t.Fatalf("after a restart: %+v, transitions %v", a, rec2.got)
	}
	rec2.got = nil
	// Repaired: keep_firing_for 2m holds it, then it resolves.
	st.set("paper_expr")
	e2.Eval(context.Background(), at(4))
	if s := states(e2)["hw_paper_out/k1"]; s != StateFiring {
		t.Fatalf("within keep_firing_for: %q", s)
	}
	e2.Eval(context.Background(), at(6))
	if s := states(e2)["hw_paper_out/k1"]; s != StateInactive || len(rec2.got) != 1 || rec2.got[0].To != StateInactive {
		t.Fatalf("after keep_firing_for: %q, %v", s, rec2.got)
	}
	if n := len(rec.got); n != 2 || rec.got[0].To != StatePending || rec.got[1].To != StateFiring {
		t.Fatalf("first run transitions: %+v", rec.got)
	}

	// A pending alert that goes away never fired: it is dropped.
	st.set("paper_expr", "k2")
	e2.Eval(context.Background(), at(7))
	st.set("paper_expr")
	e2.Eval(context.Background(), at(8))
	if _, ok := states(e2)["hw_paper_out/k2"]; ok {
		t.Fatalf("a pending alert outlived its condition: %v", states(e2))
	}
}

func TestSuppression(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	open := true
	e, _ := newEvaluator(t, "", st, func(site string, _ time.Time) bool { return open })
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

	// k1 goes offline; its paper alert, appearing meanwhile, is held back.
	st.set("offline_expr", "k1")
	for m := 0; m <= 2; m++ {
		e.Eval(context.Background(), at(m))
	}
	st.set("paper_expr", "k1", "k2")
	e.Eval(context.Background(), at(3))
	got := states(e)
	if got["kiosk_offline/k1"] != StateFiring || got["hw_paper_out/k2"] != StatePending {
		t.Fatalf("states: %v", got)
	}
	if _, ok := got["hw_paper_out/k1"]; ok {
		t.Fatalf("the paper of an offline kiosk was judged: %v", got)
	}
	held := e.HeldAlerts()
	if len(held) != 1 || held[0].Reason != HeldOffline || held[0].Labels["kiosk"] != "k1" {
		t.Fatalf("held: %+v", held)
	}

	// k3 is in service mode: nothing new; k2's paper alert, already pending, goes on.
	st.service = []string{"k2", "k3"}
	st.set("app_expr", "k3")
	e.Eval(context.Background(), at(4))
	got = states(e)
	if _, ok := got["sw_service_unresponsive/k3"]; ok || got["hw_paper_out/k2"] != StatePending {
		t.Fatalf("service mode: %v", got)
	}
	// Closed site: a switched-off application is not a fault.
	st.service = nil
	open = false
	st.set("app_expr", "k4")
	e.Eval(context.Background(), at(5))
	if _, ok := states(e)["sw_service_unresponsive/k4"]; ok {
		t.Fatal("an application fault was raised while the site was closed")
	}
	reasons := map[string]string{}
	for _, h := range e.HeldAlerts() {
		reasons[h.Labels["kiosk"]] = h.Reason
	}
	if reasons["k4"] != HeldClosed {
		t.Fatalf("held: %v", reasons)
	}
	open = true
	e.Eval(context.Background(), at(6))
	if s := states(e)["sw_service_unresponsive/k4"]; s != StateFiring {
		t.Fatalf("the site opened (for 0): %q", s)
	}
}

// slowStorage delays some expressions, so that with concurrency their
// results arrive after those of rules later in the rulebook's order.
type slowStorage struct {
	*fakeStorage
	delay map[string]time.Duration
}

func (s slowStorage) Query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	time.Sleep(s.delay[strings.TrimSpace(q)])
	return s.fakeStorage.Query(ctx, q, at)
}

// Concurrent queries change how long a cycle takes, not what it decides:
// an offline alert that fires in a cycle still holds back the peripheral
// alerts of the same cycle, though its query finished last.
func TestConcurrencyDecidesNothing(t *testing.T) {
	rb, err := rulebook.Parse([]byte(book), "book.yml")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	run := func(concurrency int) ([]Transition, []Held, string) {
		st := slowStorage{&fakeStorage{kiosks: map[string][]string{}}, map[string]time.Duration{"offline_expr": 20 * time.Millisecond}}
		self := metrics.NewSet()
		e, err := New(Config{Rulebook: rb, Concurrency: concurrency}, st, log.NewNopLogger(), self)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		e.AddSink(rec)
		st.set("offline_expr", "k1")
		for m := 0; m <= 3; m++ {
			if m == 2 { // k1's offline alert fires in this cycle
				st.set("paper_expr", "k1", "k2")
			}
			e.Eval(context.Background(), t0.Add(time.Duration(m)*time.Minute))
		}
		var b strings.Builder
		self.WritePrometheus(&b)
		return rec.got, e.HeldAlerts(), b.String()
	}
	seq, seqHeld, _ := run(1)
	conc, concHeld, exposed := run(4)
	if len(seqHeld) != 1 || seqHeld[0].Reason != HeldOffline || seqHeld[0].Labels["kiosk"] != "k1" {
		t.Fatalf("held, one at a time: %+v", seqHeld)
	}
	if !reflect.DeepEqual(seq, conc) || !reflect.DeepEqual(seqHeld, concHeld) {
		t.Fatalf("concurrency changed the outcome:\none at a time %+v held %+v\nconcurrent %+v held %+v", seq, seqHeld, conc, concHeld)
	}
	if !strings.Contains(exposed, `kioskmon_rule_evaluation_duration_seconds_count{rule="kiosk_offline"} 4`) {
		t.Fatalf("no per-rule evaluation time in:\n%s", exposed)
	}
}

// TestKeepFiringForCountsAcrossARestart: keep_firing_for counts from the
// last cycle that saw the alert, also after a restart; the state file is
// written at transitions, so it must also keep when a firing alert was
// last seen.
func TestKeepFiringForCountsAcrossARestart(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	state := filepath.Join(t.TempDir(), "alerts.json")
	e, _ := newEvaluator(t, state, st, nil)
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	st.set("paper_expr", "k1")
	for m := 0; m <= 10; m++ { // fires at 2m, seen until 10m
		e.Eval(context.Background(), at(m))
	}
	e2, rec2 := newEvaluator(t, state, st, nil) // restarted; refilled at 11m; keep_firing_for 2m
	st.set("paper_expr")
	e2.Eval(context.Background(), at(11))
	if s := states(e2)["hw_paper_out/k1"]; s != StateFiring {
		t.Fatalf("1m after it was last seen, keep_firing_for 2m, after a restart: %q (transitions %+v)", s, rec2.got)
	}
	e2.Eval(context.Background(), at(13))
	if s := states(e2)["hw_paper_out/k1"]; s != StateInactive {
		t.Fatalf("3m after it was last seen: %q", s)
	}
}

// TestResolvedAlertAgesOutWhileHeld: an alert that resolved and whose
// condition comes back while it is held back (the kiosk in service mode)
// leaves the list after 15 minutes, as any resolved alert, instead of
// being re-sent to Alertmanager as resolved for as long as the hold lasts.
func TestResolvedAlertAgesOutWhileHeld(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	e, _ := newEvaluator(t, "", st, nil)
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	st.set("app_expr", "k1")
	e.Eval(context.Background(), at(0)) // for 0: fires
	st.set("app_expr")
	e.Eval(context.Background(), at(1)) // resolved
	st.service = []string{"k1"}         // the engineer on site; the app down again
	st.set("app_expr", "k1")
	for m := 2; m <= 60; m++ {
		e.Eval(context.Background(), at(m))
	}
	if s, ok := states(e)["sw_service_unresponsive/k1"]; ok {
		t.Fatalf("an alert resolved 59 minutes ago is still listed (and re-sent to Alertmanager) as %q", s)
	}
	if held := e.HeldAlerts(); len(held) != 1 {
		t.Fatalf("held back: %+v, want the service-mode kiosk's alert", held)
	}
}

// TestAlertsOfARemovedRuleResolve: a rule taken out of the rulebook while
// its alert fired resolves that alert at the first cycle after the
// restart, so its SLA incident and Alertmanager learn it ended.
func TestAlertsOfARemovedRuleResolve(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	state := filepath.Join(t.TempDir(), "alerts.json")
	e, _ := newEvaluator(t, state, st, nil)
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	st.set("paper_expr", "k1")
	for m := 0; m <= 3; m++ {
		e.Eval(context.Background(), t0.Add(time.Duration(m)*time.Minute))
	}
	// The rule is renamed in the rulebook: the saved alert's rule is gone.
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, bytes.ReplaceAll(data, []byte(`"hw_paper_out"`), []byte(`"hw_paper_gone"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	e2, rec := newEvaluator(t, state, st, nil)
	st.set("paper_expr")
	e2.Eval(context.Background(), t0.Add(4*time.Minute))
	var resolved bool
	for _, tr := range rec.got {
		if tr.Alert.Rule == "hw_paper_gone" {
			resolved = tr.From == StateFiring && tr.To == StateInactive && tr.Alert.ActiveAt.Equal(t0)
		}
	}
	if !resolved {
		t.Fatalf("the removed rule's firing alert was not resolved: transitions %+v", rec.got)
	}
}

// flakySink fails while down, and records what it took.
type flakySink struct {
	down bool
	got  []Transition
}

func (f *flakySink) Transition(_ context.Context, t Transition) error {
	if f.down {
		return errors.New("ledger unavailable")
	}
	f.got = append(f.got, t)
	return nil
}

// TestFailedSinkTransitionsAreRetriedInOrder: a transition the SLA ledger
// could not take (the database down) is handed to it again at the next
// cycles, before the newer ones, until it is taken.
func TestFailedSinkTransitionsAreRetriedInOrder(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	e, _ := newEvaluator(t, "", st, nil)
	sink := &flakySink{down: true}
	e.AddSink(sink)
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	st.set("paper_expr", "k1")
	for m := 0; m <= 3; m++ { // pending at 0, firing at 2: the sink is down
		e.Eval(context.Background(), at(m))
	}
	if len(sink.got) != 0 {
		t.Fatalf("a down sink took %v", sink.got)
	}
	sink.down = false
	st.set("paper_expr")
	e.Eval(context.Background(), at(4)) // within keep_firing_for: no new transition
	var got []string
	for _, tr := range sink.got {
		got = append(got, tr.From+">"+tr.To+"@"+tr.At.Format("15:04"))
	}
	if want := []string{"inactive>pending@02:00", "pending>firing@02:02"}; !slices.Equal(got, want) {
		t.Fatalf("after the sink came back: %v, want %v", got, want)
	}
	if n := e.sinkFailures.Get(); n != 4 {
		t.Errorf("kioskmon_alert_sink_failures_total %d, want 4 (a try a cycle while it was down)", n)
	}
}

// TestResolvedAlertAgesOutWhileItsRuleFails: while a rule's query fails its
// alerts keep their state, except that a resolved one still ages out.
type failingStorage struct {
	*fakeStorage
	fail map[string]bool
}

func (s failingStorage) Query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	if s.fail[q] {
		return nil, context.DeadlineExceeded
	}
	return s.fakeStorage.Query(ctx, q, at)
}
func TestResolvedAlertAgesOutWhileItsRuleFails(t *testing.T) {
	fs := failingStorage{&fakeStorage{kiosks: map[string][]string{}}, map[string]bool{}}
	e, _ := newEvaluator(t, "", fs.fakeStorage, nil)
	e.q = fs
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	fs.set("app_expr", "k1")
	e.Eval(context.Background(), at(0)) // for 0: fires
	fs.set("app_expr")
	e.Eval(context.Background(), at(1)) // resolved
	fs.fail["app_expr"] = true          // the query times out from now on
	for m := 2; m <= 60; m++ {
		e.Eval(context.Background(), at(m))
	}
	if s, ok := states(e)["sw_service_unresponsive/k1"]; ok {
		t.Fatalf("an alert resolved 59 minutes ago is still listed (and re-sent to Alertmanager as resolved) as %q", s)
	}
}

// TestPendingOfflineHeldAtClosing: a kiosk switched off minutes before its
// site closes does not page through the night: its pending offline alert
// is held back once the site is closed.
func TestPendingOfflineHeldAtClosing(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	closeAt := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC) // 17:30 Asia/Shanghai
	e, rec := newEvaluator(t, "", st, func(_ string, at time.Time) bool { return at.Before(closeAt) })
	at := func(m int) time.Time { return closeAt.Add(time.Duration(m) * time.Minute) }

	st.set("offline_expr", "k1")
	e.Eval(context.Background(), at(-1)) // 17:29, open: pending (for 2m)
	if s := states(e)["kiosk_offline/k1"]; s != StatePending {
		t.Fatalf("17:29: %q, want pending", s)
	}
	e.Eval(context.Background(), at(0)) // 17:30, closed
	e.Eval(context.Background(), at(1)) // 17:31, closed: 2m since 17:29
	if s := states(e)["kiosk_offline/k1"]; s == StateFiring {
		for _, tr := range rec.got {
			t.Logf("transition %s -> %s at %s", tr.From, tr.To, tr.At.Format("15:04"))
		}
		t.Fatalf("17:31 (site closed): kiosk_offline/k1 is %q; a kiosk switched off at closing paged; held: %+v", s, e.HeldAlerts())
	}
}

// TestPendingPeripheralHeldWhileKioskOffline: a peripheral alert pending
// when its kiosk went offline is held back with the others.
func TestPendingPeripheralHeldWhileKioskOffline(t *testing.T) {
	st := &fakeStorage{kiosks: map[string][]string{}}
	e, _ := newEvaluator(t, "", st, nil)
	t0 := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	st.set("offline_expr", "k1")
	e.Eval(context.Background(), at(0)) // offline pending (for 2m)
	st.set("paper_expr", "k1")
	e.Eval(context.Background(), at(1)) // paper pending (for 2m)
	e.Eval(context.Background(), at(2)) // offline fires
	e.Eval(context.Background(), at(3)) // paper: 2m pending
	got := states(e)
	if got["kiosk_offline/k1"] == StateFiring && got["hw_paper_out/k1"] == StateFiring {
		t.Fatalf("the paper alert of an offline kiosk fired: %v, held %+v", got, e.HeldAlerts())
	}
}
