package store

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The storage is a process singleton, so one test exercises its life: open,
// write, query, flush to disk, refuse a second open, close.
func TestStorageLifecycle(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{DataPath: dir, SearchLatencyOffset: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if _, err := Open(Config{DataPath: t.TempDir()}); err == nil {
		t.Fatal("a second Open in one process succeeded")
	}

	now := time.Now().UnixMilli()
	name := AppendMetricName(nil, []Label{{Name: "__name__", Value: "kiosk_up"}, {Name: "kiosk", Value: "k1"}, {Name: "empty", Value: ""}})
	labels, err := DecodeMetricName(name)
	if err != nil || len(labels) != 2 || labels[0].Value != "kiosk_up" || labels[1] != (Label{Name: "kiosk", Value: "k1"}) {
		t.Fatalf("decoded %v %v; want the name and kiosk label, the empty label dropped", labels, err)
	}
	if err := s.AddRows([]Row{{MetricNameRaw: name, Timestamp: now - 1000, Value: 1}, {MetricNameRaw: name, Timestamp: now, Value: 2}}); err != nil {
		t.Fatal(err)
	}
	s.MakeSearchable()
	srv := httptest.NewServer(s.QueryHandler())
	defer srv.Close()
	// An explicit time: queries without one are aligned to whole seconds.
	q := url.Values{"query": {`kiosk_up{kiosk="k1"}`}, "time": {strconv.FormatInt(now/1000+1, 10)}}
	resp, err := http.Get(srv.URL + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  []any
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&reply)
	resp.Body.Close()
	if reply.Status != "success" || len(reply.Data.Result) != 1 || reply.Data.Result[0].Value[1] != "2" {
		t.Fatalf("query reply %+v, want kiosk_up=2", reply)
	}

	// The same in process, as the rule evaluator asks.
	at := time.UnixMilli(now + 1000)
	got, err := s.Query(context.Background(), `max by (kiosk) (kiosk_up) == 2`, at)
	if err != nil || len(got) != 1 || got[0].Value != 2 || len(got[0].Labels) != 1 || got[0].Labels[0] != (Label{Name: "kiosk", Value: "k1"}) {
		t.Fatalf("in-process query: %+v, %v", got, err)
	}
	got, err = s.Query(context.Background(), `kiosk_up`, at)
	if err != nil || len(got) != 1 || got[0].Labels[0] != (Label{Name: "__name__", Value: "kiosk_up"}) {
		t.Fatalf("in-process selector: %+v, %v", got, err)
	}
	if got, err := s.Query(context.Background(), `kiosk_up == 5`, at); err != nil || len(got) != 0 {
		t.Fatalf("a query that matches nothing: %+v, %v", got, err)
	}
	if _, err := s.Query(context.Background(), `max by (kiosk (kiosk_up)`, at); err == nil {
		t.Fatal("a malformed query gave no error")
	}

	// A rollup over a window of hours at about now comes from the rollup
	// cache and the last minutes' samples, with the same result.
	level := AppendMetricName(nil, []Label{{Name: "__name__", Value: "kiosk_paper_level_ratio"}, {Name: "kiosk", Value: "k2"}})
	var rows []Row
	for ago := 4 * time.Hour; ago >= 0; ago -= 5 * time.Minute {
		v := 0.2
		if ago == 3*time.Hour {
			v = 0.9 // the highest, well inside the window and outside the last minutes
		}
		rows = append(rows, Row{MetricNameRaw: level, Timestamp: now - ago.Milliseconds(), Value: v})
	}
	if err := s.AddRows(rows); err != nil {
		t.Fatal(err)
	}
	s.MakeSearchable()
	cacheRequests := metrics.GetOrCreateCounter(`vm_rollup_result_cache_requests_total`)
	before := cacheRequests.Get()
	for range 2 {
		got, err := s.Query(context.Background(), `max by (kiosk) (max_over_time(kiosk_paper_level_ratio[4h]))`, at)
		if err != nil || len(got) != 1 || got[0].Value != 0.9 {
			t.Fatalf("max over 4h: %+v, %v; want 0.9", got, err)
		}
	}
	if cacheRequests.Get() == before {
		t.Error("a rollup over 4 hours at now did not go through the rollup cache")
	}

	if err := s.FlushToDisk(); err != nil {
		t.Fatal(err)
	}
	snapshots, _ := filepath.Glob(filepath.Join(dir, "vm", "snapshots", "*"))
	if len(snapshots) != 0 {
		t.Fatalf("FlushToDisk left snapshots behind: %v", snapshots)
	}
	if _, err := os.Stat(filepath.Join(dir, "kioskmon.lock")); err != nil {
		t.Fatal(err)
	}
}

func TestLockRefusesSecondHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockDir(first)
	_, err = lockDir(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
}
