package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	want := map[string]string{
		"no-queue.bad.yml":          "testdata/no-queue.bad.yml:2: push.queue_dir: is required",
		"interval.bad.yml":          "testdata/interval.bad.yml:2: interval: 100ms is not between 1s and 1h",
		"unknown-collector.bad.yml": "testdata/unknown-collector.bad.yml:3: field hots not found",
		"bad-url.bad.yml":           "testdata/bad-url.bad.yml:3: push.url: \"kioskmon:8428\" is not an http(s) URL",
		"version.bad.yml":           "testdata/version.bad.yml:1: version: \"v2\" is not a known version",
		"ups.bad.yml":               "testdata/ups.bad.yml:8: collectors.ups.ups.1: \"two words\" is not a UPS name",
	}
	files, _ := filepath.Glob("testdata/*.yml")
	for _, f := range files {
		_, err := Load(f)
		name := filepath.Base(f)
		if strings.HasSuffix(name, ".good.yml") {
			if err != nil {
				t.Errorf("%s: %v", f, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want[name]) || want[name] == "" {
			t.Errorf("%s:\n got %v\nwant %s", f, err, want[name])
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	for _, file := range files {
		cfg, _ := Load(file)
		_ = cfg
	}
	f.Add([]byte("version: v1\nlisten: 127.0.0.1:9182\n"))
	f.Add([]byte("version: v1\npush: {url: 'http://x:1', token: t, queue_dir: q}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if cfg.Validate() != nil {
			t.Fatal("Parse accepted what Validate refuses")
		}
	})
}
