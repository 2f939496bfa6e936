package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// TestOpeningHoursSeries: the server writes each kiosk's opening hours from
// the inventory (kioskmon_kiosk_open, kioskmon_kiosk_open_seconds_total), the
// series the consumables forecasts count opening time with.
func TestOpeningHoursSeries(t *testing.T) {
	china, _ := time.LoadLocation(inventory.DefaultTimezone)
	// A hall open only on the day after tomorrow is closed now.
	later := strings.ToLower(time.Now().In(china).AddDate(0, 0, 2).Weekday().String()[:3])
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yml")
	os.WriteFile(inv, []byte(fmt.Sprintf(`version: v1
sites:
- id: station
- id: hall
  opening_hours:
  - {days: %s, open: "08:00", close: "09:00"}
kiosks:
- {id: k-station, site: station, district: gulou, provider: acme-om}
- {id: k-hall, site: hall, district: gulou, provider: acme-om}
`, later)), 0o600)
	fleet, err := inventory.Load(inv)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, inv)
	want := map[string]float64{"k-station": 1, "k-hall": 0}
	got := s.waitExport(`{__name__=~"kioskmon_kiosk_open.*"}`, 30*time.Second, func(es []exportedSeries) bool { return len(es) == 4 })
	for _, es := range got {
		k := es.Metric["kiosk"]
		if es.Metric["district"] != "gulou" || es.Metric["provider"] != "acme-om" || es.Metric["site"] == "" {
			t.Errorf("labels %v", es.Metric)
		}
		site, _ := inventory.NewIndex(fleet).Site(es.Metric["site"])
		for i, v := range es.Values {
			at := time.UnixMilli(es.Timestamps[i])
			switch es.Metric["__name__"] {
			case "kioskmon_kiosk_open":
				if v != want[k] {
					t.Errorf("%s open %g at %s, want %g", k, v, at, want[k])
				}
			case "kioskmon_kiosk_open_seconds_total":
				// The storage keeps milliseconds; the counter counts whole seconds.
				if w, _ := site.OpenSeconds(at); v != w {
					t.Errorf("%s open seconds %g at %s, want %g", k, v, at, w)
				}
			default:
				t.Errorf("unexpected series %v", es.Metric)
			}
		}
	}
}
