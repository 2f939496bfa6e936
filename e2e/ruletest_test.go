package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKioskmonRulesTest runs the rulebook's promtool-format tests with
// kioskmon's own runner (its evaluator on its embedded storage), and checks
// that a wrong expectation fails with a report naming it.
func TestKioskmonRulesTest(t *testing.T) {
	dir := t.TempDir()
	kioskmonCLI(t, "rules", "export", "--out", filepath.Join(dir, "rules"))
	tests, _ := filepath.Glob("../alerting/rulebook/testdata/*.test.yml")
	var files []string
	for _, f := range tests {
		data, _ := os.ReadFile(f)
		dst := filepath.Join(dir, filepath.Base(f))
		os.WriteFile(dst, data, 0o644)
		files = append(files, dst)
	}
	out := kioskmonCLI(t, append([]string{"rules", "test"}, files...)...)
	if n := strings.Count("\n"+out, "\nok "); n < 20 || strings.Contains(out, "FAIL") {
		t.Fatalf("kioskmon rules test:\n%s", out)
	}

	data, _ := os.ReadFile(filepath.Join(dir, "power.test.yml"))
	wrong := filepath.Join(dir, "wrong.test.yml")
	os.WriteFile(wrong, []byte(strings.Replace(string(data), "severity: urgent", "severity: minor", 1)), 0o644)
	cmd := exec.Command(kioskmonBin, "rules", "test", wrong)
	got, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(got), "FAIL "+wrong) || !strings.Contains(string(got), `severity="urgent"`) {
		t.Fatalf("a wrong expectation: %v\n%s", err, got)
	}
}
