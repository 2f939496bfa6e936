package inspection

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kioskmon/kioskmon/alerting/evaluator"
	"github.com/kioskmon/kioskmon/alerting/rulebook"
)

// Kiosk is what an inspection needs to know of a kiosk.
type Kiosk struct{ ID, Site, District, Provider string }

// Finding is one thing an item failed on.
type Finding struct {
	// Fault is the rulebook fault whose symptom is present, if one is.
	Fault  string `json:"fault,omitempty"`
	Device string `json:"device,omitempty"`
	Detail string `json:"detail"`
	// Alert is the state of the alert already raised for it (pending,
	// firing), or "" when no alert covers it: then the inspection raises it.
	Alert string `json:"alert,omitempty"`
}

// ItemResult is one checklist item of one inspection.
type ItemResult struct {
	Item     string    `json:"item"`
	Result   string    `json:"result"`
	Findings []Finding `json:"findings,omitempty"`
}

// unalerted reports whether the item failed on something no alert covers.
func (r ItemResult) unalerted() bool {
	for _, f := range r.Findings {
		if f.Alert == "" {
			return true
		}
	}
	return false
}

// Record is one remote inspection of one kiosk.
type Record struct {
	Kiosk    string `json:"kiosk"`
	Site     string `json:"site"`
	District string `json:"district"`
	Provider string `json:"provider"`
	// At is when the kiosk was inspected (the metrics' time).
	At time.Time `json:"at"`
	// Result is pass, fail (an item failed) or unreachable.
	Result string       `json:"result"`
	Items  []ItemResult `json:"items,omitempty"`
}

// Item returns the result of item id, if the record has it.
func (r *Record) Item(id string) (ItemResult, bool) {
	for _, it := range r.Items {
		if it.Item == id {
			return it, true
		}
	}
	return ItemResult{}, false
}

// checker inspects batches of kiosks from the storage.
type checker struct {
	q      evaluator.Querier
	faults []rulebook.Fault
}

// quoted is kiosk ids as a PromQL regexp of alternatives.
func kioskSelector(batch []Kiosk) ([]string, map[string]bool) {
	ids := make([]string, len(batch))
	in := make(map[string]bool, len(batch))
	for i, k := range batch {
		ids[i], in[k.ID] = k.ID, true
	}
	return ids, in
}

func label(s evaluator.Sample, name string) string {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// query runs expr restricted to the batch's kiosks.
func (c *checker) query(ctx context.Context, expr string, ids []string, at time.Time) ([]evaluator.Sample, error) {
	restricted, err := rulebook.RestrictToKiosks(expr, ids)
	if err != nil {
		return nil, fmt.Errorf("restrict %q to the batch: %w", expr, err)
	}
	samples, err := c.q.Query(ctx, restricted, at)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	return samples, nil
}

// inspect inspects batch at time at. alerts are the open alerts, to tell a
// finding already raised from a new one. Any failed query fails the whole
// batch: a record is complete or not written.
func (c *checker) inspect(ctx context.Context, batch []Kiosk, at time.Time, alerts []evaluator.Alert) ([]Record, error) {
	ids, inBatch := kioskSelector(batch)
	alertState := map[[2]string]string{} // kiosk, fault
	for _, a := range alerts {
		if a.State == evaluator.StatePending || a.State == evaluator.StateFiring {
			key := [2]string{a.Labels["kiosk"], a.Labels["fault"]}
			if alertState[key] != evaluator.StateFiring {
				alertState[key] = a.State
			}
		}
	}

	perKiosk := func(samples []evaluator.Sample) map[string][]evaluator.Sample {
		out := map[string][]evaluator.Sample{}
		for _, s := range samples {
			if k := label(s, "kiosk"); inBatch[k] {
				out[k] = append(out[k], s)
			}
		}
		return out
	}
	// A kiosk that sent nothing for 10 minutes cannot be inspected remotely.
	reporting, err := c.query(ctx, `count by (kiosk) (last_over_time(kiosk_exporter_build_info[10m]))`, ids, at)
	if err != nil {
		return nil, err
	}
	reportingKiosks := perKiosk(reporting)
	printing, err := c.query(ctx, `count by (kiosk) (last_over_time({__name__=~"kiosk_paper_level_ratio|kiosk_toner_level_ratio|kiosk_printed_pages_total|kiosk_receipt_paper_state"}[10m]))`, ids, at)
	if err != nil {
		return nil, err
	}
	printingKiosks := perKiosk(printing)
	peripherals, err := c.query(ctx, `last_over_time(kiosk_peripheral_state[10m]) == 1`, ids, at)
	if err != nil {
		return nil, err
	}
	peripheralsOf := perKiosk(peripherals)

	findings := map[string]map[string][]Finding{} // kiosk, item
	add := func(kiosk, item string, f Finding) {
		if findings[kiosk] == nil {
			findings[kiosk] = map[string][]Finding{}
		}
		findings[kiosk][item] = append(findings[kiosk][item], f)
	}
	for _, f := range c.faults {
		samples, err := c.query(ctx, f.Expr, ids, at)
		if err != nil {
			return nil, fmt.Errorf("fault %s: %w", f.ID, err)
		}
		for kiosk, ss := range perKiosk(samples) {
			for _, s := range ss {
				device := label(s, "device")
				if device == "" {
					device = label(s, "printer")
				}
				add(kiosk, f.Inspection, Finding{Fault: f.ID, Device: device, Detail: f.NameEN + describe(s),
					Alert: alertState[[2]string{kiosk, f.ID}]})
			}
		}
	}

	records := make([]Record, 0, len(batch))
	for _, k := range batch {
		rec := Record{Kiosk: k.ID, Site: k.Site, District: k.District, Provider: k.Provider, At: at.UTC()}
		if len(reportingKiosks[k.ID]) == 0 {
			rec.Result = Unreachable
			records = append(records, rec)
			continue
		}
		has := map[string]bool{}
		// Peripherals not ok that no fault's symptom named already: a camera
		// in fault, a degraded fingerprint reader, which no rule grades.
		for _, s := range peripheralsOf[k.ID] {
			item := itemOfKind[label(s, "kind")]
			if item == "" {
				continue
			}
			has[item] = true
			device, state := label(s, "device"), label(s, "state")
			if state == "ok" || named(findings[k.ID][item], device) {
				continue
			}
			add(k.ID, item, Finding{Device: device, Detail: fmt.Sprintf("%s %s is %s", label(s, "kind"), device, state)})
		}
		rec.Result = Pass
		for _, it := range Checklist {
			res := ItemResult{Item: it.ID, Findings: findings[k.ID][it.ID]}
			switch {
			case len(res.Findings) > 0:
				res.Result, rec.Result = Fail, Fail
			case it.Always || has[it.ID] || it.Printing && len(printingKiosks[k.ID]) > 0:
				res.Result = Pass
			default:
				res.Result = NotApplicable
			}
			rec.Items = append(rec.Items, res)
		}
		records = append(records, rec)
	}
	return records, nil
}

// named reports whether a finding already names device.
func named(fs []Finding, device string) bool {
	for _, f := range fs {
		if f.Device == device {
			return true
		}
	}
	return false
}

// describe renders a symptom's labels beyond the kiosk's own.
func describe(s evaluator.Sample) string {
	var parts []string
	for _, l := range s.Labels {
		switch l.Name {
		case "__name__", "kiosk", "site", "district", "provider":
		default:
			parts = append(parts, l.Name+"="+l.Value)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}
