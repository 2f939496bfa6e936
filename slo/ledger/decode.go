package ledger

import (
	"fmt"
	"time"

	"github.com/valyala/fastjson"
)

// DataDecoder decodes events' stored data as encoding/json would into
// EventData, without reflection and sharing the strings that repeat
// (kiosks, sites, faults): a month's report decodes millions. It is not
// safe for concurrent use.
type DataDecoder struct {
	p fastjson.Parser
	// One interner a field: a small map stays in the CPU's cache. Kiosks
	// and sites are not interned: a month has a few incidents of each of
	// 100,000 kiosks at 20,000 sites, and a lookup in a map that size costs
	// more than the string.
	districts, providers, faults, words interner
}

// NewDataDecoder returns a DataDecoder.
func NewDataDecoder() *DataDecoder { return &DataDecoder{} }

// Decode decodes data into e.Data.
func (dec *DataDecoder) Decode(data []byte, e *Event) error {
	v, err := dec.p.ParseBytes(data)
	if err != nil {
		return fmt.Errorf("ledger: event %d data: %w", e.Seq, err)
	}
	o, err := v.Object()
	if err != nil {
		return fmt.Errorf("ledger: event %d data: %w", e.Seq, err)
	}
	var bad error
	o.Visit(func(key []byte, v *fastjson.Value) {
		if bad != nil {
			return
		}
		if string(key) == "satisfaction" {
			n, err := v.Int()
			if err != nil {
				bad = err
			}
			e.Data.Satisfaction = n
			return
		}
		b, err := v.StringBytes()
		if err != nil {
			bad = err
			return
		}
		d := &e.Data
		name := dec.words.get
		switch string(key) {
		case "kiosk":
			d.Kiosk = string(b)
		case "site":
			d.Site = string(b)
		case "district":
			d.District = dec.districts.get(b)
		case "provider":
			d.Provider = dec.providers.get(b)
		case "fault":
			d.Fault = dec.faults.get(b)
		case "category":
			d.Category = name(b)
		case "severity":
			d.Severity = name(b)
		case "channel":
			d.Channel = name(b)
		case "proof":
			d.Proof = name(b)
		case "reason":
			d.Reason = name(b)
		case "approver":
			d.Approver = name(b)
		case "alert_key":
			d.AlertKey = string(b)
		case "note":
			d.Note = string(b)
		case "committed_arrival":
			t, err := time.Parse(time.RFC3339Nano, string(b))
			if err != nil {
				bad = err
			}
			d.CommittedArrival = t
		}
	})
	if bad != nil {
		return fmt.Errorf("ledger: event %d data: %w", e.Seq, bad)
	}
	return nil
}
