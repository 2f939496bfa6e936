package yamlfile

import (
	"testing"
	"time"
)

func TestUnits(t *testing.T) {
	d := func(in string, want time.Duration) {
		t.Helper()
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	d("90d", 90*24*time.Hour)
	d("2w", 14*24*time.Hour)
	d("1y", 365*24*time.Hour)
	d("1.5d", 36*time.Hour)
	d("30s", 30*time.Second)
	b := func(in string, want int64) {
		t.Helper()
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	b("16MiB", 16<<20)
	b("2GiB", 2<<30)
	b("64KB", 64000)
	b("1024", 1024)
	for _, bad := range []string{"-1d", "d", "5 parsecs"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	if s := ByteSize(4 << 30).String(); s != "4GiB" {
		t.Errorf("4GiB prints as %s", s)
	}
}
