package calendar

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseYear: a holiday file never panics, and one that parses builds a
// calendar.
func FuzzParseYear(f *testing.F) {
	seeds, _ := filepath.Glob("data/*.yml")
	more, _ := filepath.Glob("testdata/fuzz/*.yml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		y, err := ParseYear(data, "cn-2026.yml")
		if err != nil {
			return
		}
		if _, err := NewHolidays(y); err != nil {
			t.Fatalf("a valid year does not build: %v", err)
		}
	})
}
