package faults

import (
	"regexp"
	"testing"
)

func TestCatalogue(t *testing.T) {
	id := regexp.MustCompile(`^(hw|sw|net|power|kiosk|host|consumables)\.[a-z_]+$`)
	seen := map[string]bool{}
	for _, f := range All {
		if !id.MatchString(f.ID) || seen[f.ID] {
			t.Errorf("%q: ids are unique, prefixed like hw.paper_out", f.ID)
		}
		seen[f.ID] = true
		if f.NameZH == "" || f.NameEN == "" || f.Source == "" || f.Category == "" || (f.Class != General && f.Class != Severe) {
			t.Errorf("%s: incomplete entry %+v", f.ID, f)
		}
		if Lookup(f.ID) == nil {
			t.Errorf("%s: Lookup misses it", f.ID)
		}
	}
	// Table A.1 of Fujian 2022 has 15 rows; every one is here.
	n := 0
	for _, f := range All {
		if f.Source == sourceFujian {
			n++
		}
	}
	if n != 15 {
		t.Errorf("%d faults from Fujian 2022 table A.1, want its 15 rows", n)
	}
}
