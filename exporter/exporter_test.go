package exporter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/go-kit/log"
)

type fakeUPS struct {
	name string
	err  error
}

func (f fakeUPS) Name() string { return f.name }
func (f fakeUPS) Collect(_ context.Context, s *Snapshot) error {
	s.Add("kiosk_ups_battery_charge_ratio", 0.5, f.name)
	s.AddState("kiosk_paper_state", "empty", "a4", f.name)
	s.AddHistogram("kiosk_app_page_load_seconds", []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 10, 12.5, f.name)
	return f.err
}

func TestGatherAndScrape(t *testing.T) {
	g := NewGatherer([]Collector{fakeUPS{name: "ups"}, fakeUPS{name: "ups2", err: errors.New("upsd gone")}}, time.Second, log.NewNopLogger())
	now := time.UnixMilli(1_700_000_000_000)
	s := g.Gather(context.Background(), now)
	// build info + 2 x (1 + 3 states + 1 histogram) + 2 x 2 collector series
	if len(s.Series) != 1+2*5+4 {
		t.Fatalf("%d series", len(s.Series))
	}
	srv := httptest.NewServer(MetricsHandler(g))
	defer srv.Close()
	for _, accept := range []string{"text/plain", "application/openmetrics-text; version=1.0.0"} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(body)
		for _, want := range []string{
			`kiosk_paper_state{printer="a4",state="empty",tray="ups"} 1`,
			`kiosk_paper_state{printer="a4",state="ok",tray="ups"} 0`,
			`kiosk_app_page_load_seconds_bucket{page="ups2",le="+Inf"} 10`,
			`kiosk_exporter_collector_success{collector="ups"} 1`,
			`kiosk_exporter_collector_success{collector="ups2"} 0`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %s in\n%s", accept, want, text)
			}
		}
		if strings.HasPrefix(accept, "application/openmetrics") != strings.Contains(text, "# EOF") {
			t.Errorf("%s: wrong format:\n%s", accept, text)
		}
	}
}

func TestAppendWriteRequest(t *testing.T) {
	g := NewGatherer([]Collector{fakeUPS{name: "home"}}, time.Second, log.NewNopLogger())
	s := g.Gather(context.Background(), time.UnixMilli(1_700_000_000_000))
	raw := AppendWriteRequest(nil, s)
	var wru prompb.WriteRequestUnmarshaler
	wr, err := wru.UnmarshalProtobuf(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(wr.Timeseries) != s.Len() {
		t.Fatalf("%d series encoded, want %d", len(wr.Timeseries), s.Len())
	}
	found := false
	for _, ts := range wr.Timeseries {
		ls := ts.Labels
		if ls[0].Name != "__name__" {
			t.Fatalf("__name__ is not first: %v", ls)
		}
		for i := 2; i < len(ls); i++ {
			if ls[i-1].Name >= ls[i].Name {
				t.Fatalf("labels not sorted: %v", ls)
			}
		}
		if ls[0].Value == "kiosk_app_page_load_seconds_bucket" && ls[1].Name == "le" && ls[1].Value == "0.5" {
			found = ts.Samples[0].Value == 3 && ts.Samples[0].Timestamp == 1_700_000_000_000
		}
	}
	if !found {
		t.Fatal("histogram bucket le=0.5 missing or wrong")
	}
}
