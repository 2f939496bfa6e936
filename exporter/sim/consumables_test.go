package sim

import (
	"testing"
	"time"
)

// TestConsumablesOnlyWhileOpen: citizens print, and staff refill, only while
// the hall is open, so a week of a simulated hall has the consumption that
// the forecasts in opening hours (consumables.*_forecast) assume: none at
// night or at the weekend, whether the kiosk stays on or is switched off.
func TestConsumablesOnlyWhileOpen(t *testing.T) {
	for _, s := range []int{0, 1} { // a hall that switches its kiosks off at night, one that does not
		i := s * kiosksPerSite
		site := siteFor(s)
		if len(site.OpeningHours) == 0 {
			t.Fatalf("site %s has no opening hours", site.ID)
		}
		k := newKiosk(Member{Kiosk: kioskFor(i), Site: site}, i, 11, &openCache{site: &site})
		start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) // a Monday, 08:00 in Shanghai
		openPrinted := 0.0
		for at := start; at.Before(start.Add(7 * 24 * time.Hour)); at = at.Add(15 * time.Second) {
			paper, toner, printed := k.paper, k.toner, k.printedA4
			k.Step(at)
			open, err := site.IsOpen(at)
			if err != nil {
				t.Fatal(err)
			}
			if open {
				openPrinted += k.printedA4 - printed
				continue
			}
			if k.paper != paper || k.toner != toner || k.printedA4 != printed {
				t.Fatalf("%s at %s (closed): paper %g -> %g, toner %g -> %g, printed %g -> %g",
					site.ID, at, paper, k.paper, toner, k.toner, printed, k.printedA4)
			}
		}
		if openPrinted < 100 {
			t.Fatalf("%s printed %g pages in a week of opening hours", site.ID, openPrinted)
		}
	}
}
