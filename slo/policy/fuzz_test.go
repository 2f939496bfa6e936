package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: a policy file never panics, and a valid one answers every
// target query.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yml")
	more, _ := filepath.Glob("testdata/fuzz/*.yml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "sla.yml")
		if err != nil {
			return
		}
		if p.Version() == "" {
			t.Fatal("no version")
		}
		for _, s := range append(p.Severities(), "unknown") {
			for _, kind := range []string{Response, Arrival, Repair} {
				for _, prov := range append(p.Providers(), "") {
					r := p.Target(kind, Case{Provider: prov, Severity: s, DistanceKm: 500, NonWorkingDay: true})
					if r.Within < 0 {
						t.Fatalf("%s %s %s: negative target", kind, s, prov)
					}
				}
			}
		}
	})
}
