package main

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/golang/snappy"

	"github.com/kioskmon/kioskmon/ingest/lineprotocol"
)

func TestRemoteWriteBodyDecodes(t *testing.T) {
	f := newFleet(3, 1, time.Now().Add(-time.Hour), true)
	enc := newEncoder(options{protocol: "remote-write"})
	body, samples, ok := enc.encode(f.kiosks[1], "backlog", 5*seriesPerKiosk)
	if !ok || samples != 5*seriesPerKiosk {
		t.Fatalf("encode: ok=%v samples=%d", ok, samples)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var wru prompb.WriteRequestUnmarshaler
	wr, err := wru.UnmarshalProtobuf(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(wr.Timeseries) != seriesPerKiosk {
		t.Fatalf("%d series, want %d", len(wr.Timeseries), seriesPerKiosk)
	}
	kiosk := ""
	for _, l := range wr.Timeseries[0].Labels {
		if l.Name == "kiosk" {
			kiosk = l.Value
		}
	}
	if kiosk != "bench-00001" {
		t.Fatalf("kiosk label %q, want the peer-mode stamp bench-00001", kiosk)
	}
	for _, ts := range wr.Timeseries {
		if len(ts.Samples) != 5 {
			t.Fatalf("%d samples in a series, want 5", len(ts.Samples))
		}
		for i := 1; i < len(ts.Samples); i++ {
			if d := ts.Samples[i].Timestamp - ts.Samples[i-1].Timestamp; d != stepMs {
				t.Fatalf("step %d ms, want %d", d, stepMs)
			}
		}
	}
	// The next request continues the kiosk's timeline.
	next := f.kiosks[1].cursor
	if want := wr.Timeseries[0].Samples[4].Timestamp + stepMs; next != want {
		t.Fatalf("cursor %d, want %d", next, want)
	}
}

func TestInfluxBodyParses(t *testing.T) {
	f := newFleet(1, 1, time.Now().Add(-time.Hour), false)
	enc := newEncoder(options{protocol: "influx"})
	body, samples, ok := enc.encode(f.kiosks[0], "live", seriesPerKiosk)
	if !ok || samples != seriesPerKiosk {
		t.Fatalf("encode: ok=%v samples=%d", ok, samples)
	}
	var p lineprotocol.Parser
	p.Reset(body)
	lines := 0
	for p.Next() {
		if p.Err() != nil {
			t.Fatalf("line %d: %s", p.LineNumber(), p.Err())
		}
		if l := p.Line(); len(l.Fields) != 1 || string(l.Fields[0].Key) != "value" || !l.HasTimestamp {
			t.Fatalf("line %d: %+v", p.LineNumber(), l)
		}
		lines++
	}
	if lines != seriesPerKiosk {
		t.Fatalf("%d lines, want %d", lines, seriesPerKiosk)
	}
}
