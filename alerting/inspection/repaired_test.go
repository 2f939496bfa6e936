package inspection_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go-kit/log"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/inspection"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
)

type flakyWriter struct {
	w    inspection.SeriesWriter
	fail bool
}

func (f *flakyWriter) WriteSeries(s []inspection.Series) error {
	if f.fail {
		return errors.New("storage busy")
	}
	return f.w.WriteSeries(s)
}

// cameraRepairedFixture: k1's camera in fault until minute 60, fixed from 61.
func cameraRepairedFixture(t *testing.T) *fixture {
	f := newFixture(t)
	k1 := fleet[0]
	f.healthy(fleet[1], 0, 300)
	f.series(0, 300, 1, "kiosk_exporter_build_info", kioskLabels(k1, "version", "t")...)
	f.series(0, 60, 1, "kiosk_peripheral_state", kioskLabels(k1, "device", "cam", "kind", "camera", "state", "fault")...)
	f.series(61, 300, 1, "kiosk_peripheral_state", kioskLabels(k1, "device", "cam", "kind", "camera", "state", "ok")...)
	f.series(0, 300, 1, "kiosk_network_link_up", kioskLabels(k1, "interface", "eth0")...)
	f.st.MakeSearchable()
	return f
}

func (f *fixture) hardwareFaults(minute int) []evaluator.Sample {
	f.st.MakeSearchable()
	got, err := f.st.Query(context.Background(), rulebook.Default().Fault("inspection.hardware").Expr, f.at(minute))
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

// TestRepairedItemClearsAfterAWriteError: when the series of the record
// that clears a failed item do not reach the storage (a write error), the
// kiosk stays due and its next record writes the 0, so inspection.hardware
// does not fire on for 15 days over a repaired camera.
func TestRepairedItemClearsAfterAWriteError(t *testing.T) {
	f := cameraRepairedFixture(t)
	w := &flakyWriter{w: f.st}
	in, err := inspection.New(inspection.Config{Rulebook: rulebook.Default(), Dir: f.dir, Kiosks: func() []inspection.Kiosk { return fleet }},
		f.st, nil, w, log.NewNopLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.InspectNow(context.Background(), []string{"k1"}, f.at(30)); err != nil {
		t.Fatal(err)
	}
	if got := f.hardwareFaults(31); len(got) != 1 {
		t.Fatalf("camera fault not raised: %v", got)
	}
	w.fail = true
	if _, err := in.InspectNow(context.Background(), []string{"k1"}, f.at(91)); err == nil {
		t.Fatal("want the write error")
	}
	w.fail = false
	recs, err := in.InspectNow(context.Background(), []string{"k1"}, f.at(151)) // the engineer asks again
	if err != nil || recs[0].Result != inspection.Pass {
		t.Fatalf("%+v %v", recs, err)
	}
	if got := f.hardwareFaults(152); len(got) != 0 {
		t.Fatalf("k1 passed at 91 and 151, inspection.hardware still fires: %v", got)
	}
}

// TestRepairedItemClearsAfterACrash: the same through kill -9 between the
// ledger's fsync and the storage write: the restart writes the 0 of an item
// the last record cleared, as it writes the 1 of those still failing.
func TestRepairedItemClearsAfterACrash(t *testing.T) {
	f := cameraRepairedFixture(t)
	in := f.inspector(nil)
	if _, err := in.InspectNow(context.Background(), []string{"k1"}, f.at(30)); err != nil {
		t.Fatal(err)
	}
	// The pass at 91 is durable in the ledger; the process dies before its series are written.
	pass := inspection.Record{Kiosk: "k1", Site: "s1", District: "d1", Provider: "p1", At: f.at(91).UTC(), Result: inspection.Pass,
		Items: []inspection.ItemResult{{Item: "camera", Result: inspection.Pass}}}
	if err := in.Ledger().Append([]inspection.Record{pass}); err != nil {
		t.Fatal(err)
	}
	in2 := f.inspector(nil) // restart
	if last := in2.LastInspections()["k1"]; !last.Equal(f.at(91)) {
		t.Fatalf("restored last %v", last)
	}
	if got := f.hardwareFaults(92); len(got) != 0 {
		t.Fatalf("after the restart the repaired camera still raises inspection.hardware: %v", got)
	}
}
