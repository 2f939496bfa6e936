package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoChromium is returned by PDF when no Chromium is installed.
var ErrNoChromium = errors.New("no Chromium in PATH (chromium, chromium-browser, google-chrome): install the Debian package chromium, " +
	"and a CJK font such as fonts-noto-cjk for Chinese reports")

// ChromiumNames are the programs PDF looks for, in order.
var ChromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// DefaultPDFTimeout bounds a PDF rendering whose context has no deadline.
const DefaultPDFTimeout = 2 * time.Minute

// FindChromium returns the Chromium to run: chromium itself when set (a
// path or a name looked up in PATH), else the first of ChromiumNames in
// PATH, else ErrNoChromium.
func FindChromium(chromium string) (string, error) {
	if chromium != "" {
		path, err := exec.LookPath(chromium)
		if err != nil {
			return "", fmt.Errorf("chromium %q: %w", chromium, err)
		}
		return path, nil
	}
	for _, name := range ChromiumNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", ErrNoChromium
}

// PDF prints an HTML page (Month.HTML's) to PDF with headless Chromium, as
// its print dialog would on A4: the page's own print CSS lays it out, and
// Chromium embeds the glyphs of the fonts it used. Chinese text needs a CJK
// font installed (Debian fonts-noto-cjk or fonts-wqy-zenhei; Chromium
// reads their .ttc collections, which Go PDF libraries do not), or it
// prints as empty boxes. chromium is the program ("" finds one, see
// FindChromium). The run is bounded by ctx, or by DefaultPDFTimeout when
// ctx has no deadline, and leaves nothing behind: Chromium's profile and
// the files go in a temporary directory that is removed.
func PDF(ctx context.Context, chromium string, html []byte) ([]byte, error) {
	bin, err := FindChromium(chromium)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPDFTimeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "kioskmon-report-")
	if err != nil {
		return nil, fmt.Errorf("print report to PDF: %w", err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(in, html, 0o600); err != nil {
		return nil, fmt.Errorf("print report to PDF: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin,
		"--headless",
		// Chromium's sandbox refuses to run as root, which a container or
		// a service often is; the page is our own, with no script.
		"--no-sandbox",
		"--disable-gpu",
		"--no-pdf-header-footer",
		// A profile of its own: nothing written to the user's home, and
		// two renderings at once do not share (and lock) one.
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
		"--disable-background-networking",
		// Containers give /dev/shm 64 MB, too little for a long report.
		"--disable-dev-shm-usage",
		"--print-to-pdf="+out,
		(&url.URL{Scheme: "file", Path: in}).String())
	var stderr tail
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// Chromium's helper processes inherit the output pipes: do not wait on
	// them for long once Chromium itself is gone.
	cmd.WaitDelay = 5 * time.Second
	ownProcessGroup(cmd)
	err = cmd.Run()
	killProcessGroup(cmd) // helpers left behind by a crash would outlive the run
	if ctx.Err() != nil {
		return nil, fmt.Errorf("print report to PDF with %s: %w", bin, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("print report to PDF with %s: %w: %s", bin, err, stderr.String())
	}
	pdf, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("print report to PDF with %s: no PDF written: %w: %s", bin, err, stderr.String())
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		return nil, fmt.Errorf("print report to PDF with %s: the output is not a PDF: %s", bin, stderr.String())
	}
	return pdf, nil
}

// tail keeps the last lines Chromium wrote, for the error message. Its
// D-Bus complaints (no session bus in a container or a service) say
// nothing about a failed print and are dropped.
type tail struct{ lines []string }

const tailLines = 8

func (t *tail) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "dbus") || strings.Contains(line, "DBus") {
			continue
		}
		t.lines = append(t.lines, line)
		if len(t.lines) > tailLines {
			t.lines = t.lines[len(t.lines)-tailLines:]
		}
	}
	return len(p), nil
}

func (t *tail) String() string {
	if len(t.lines) == 0 {
		return "(no output)"
	}
	return strings.Join(t.lines, " | ")
}
