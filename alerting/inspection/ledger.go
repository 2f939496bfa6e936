package inspection

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Ledger keeps inspection records durably: one JSON line per record, in one
// file per month (inspections-2026-11.jsonl, by the record's UTC time).
// Append returns after the lines are fsynced, so an inspection it
// acknowledged survives kill -9 and power loss. A crash in the middle of a
// write leaves a torn last line, which OpenLedger cuts off.
type Ledger struct {
	dir string
	mu  sync.Mutex
}

const ledgerPrefix, ledgerSuffix = "inspections-", ".jsonl"

func monthFile(t time.Time) string { return ledgerPrefix + t.UTC().Format("2006-01") + ledgerSuffix }

// OpenLedger opens (creating) the ledger in dir.
func OpenLedger(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create inspection ledger %s: %w", dir, err)
	}
	l := &Ledger{dir: dir}
	months, err := l.months()
	if err != nil {
		return nil, err
	}
	for _, m := range months {
		if err := cutTornLine(filepath.Join(dir, m)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// months lists the ledger's files, oldest first.
func (l *Ledger) months() ([]string, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read inspection ledger %s: %w", l.dir, err)
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ledgerPrefix) && strings.HasSuffix(n, ledgerSuffix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// cutTornLine truncates path after its last complete line.
func cutTornLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	// Records are a few KiB at most: the last line starts in the last 1 MiB.
	tail := min(st.Size(), 1<<20)
	buf := make([]byte, tail)
	if _, err := f.ReadAt(buf, st.Size()-tail); err != nil && err != io.EOF {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if buf[len(buf)-1] == '\n' {
		return nil
	}
	keep := st.Size() - tail + int64(bytes.LastIndexByte(buf, '\n')+1)
	if err := f.Truncate(keep); err != nil {
		return fmt.Errorf("cut the torn last record of %s: %w", path, err)
	}
	return f.Sync()
}

// Append writes recs durably.
func (l *Ledger) Append(recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	byMonth := map[string]*bytes.Buffer{}
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode inspection of %s: %w", r.Kiosk, err)
		}
		name := monthFile(r.At)
		if byMonth[name] == nil {
			byMonth[name] = &bytes.Buffer{}
		}
		byMonth[name].Write(line)
		byMonth[name].WriteByte('\n')
	}
	for name, buf := range byMonth {
		path := filepath.Join(l.dir, name)
		_, statErr := os.Stat(path)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open inspection ledger: %w", err)
		}
		_, werr := f.Write(buf.Bytes())
		serr := f.Sync()
		cerr := f.Close()
		if err := firstError(werr, serr, cerr); err != nil {
			return fmt.Errorf("write inspection ledger %s: %w", path, err)
		}
		if os.IsNotExist(statErr) {
			// A new month's file: its directory entry must be durable too.
			if err := syncDir(l.dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Scan calls fn for every record with from <= At < to, in file order (which
// is time order), until fn returns false. Lines that do not decode are
// skipped and counted in the returned number.
func (l *Ledger) Scan(from, to time.Time, fn func(Record) bool) (skipped int, err error) {
	months, err := l.months()
	if err != nil {
		return 0, err
	}
	first, last := monthFile(from), monthFile(to)
	for _, m := range months {
		if m < first || m > last {
			continue
		}
		more, bad, err := scanFile(filepath.Join(l.dir, m), from, to, fn)
		skipped += bad
		if err != nil || !more {
			return skipped, err
		}
	}
	return skipped, nil
}

func scanFile(path string, from, to time.Time, fn func(Record) bool) (more bool, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			skipped++
			continue
		}
		if r.At.Before(from) || !r.At.Before(to) {
			continue
		}
		if !fn(r) {
			return false, skipped, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, skipped, fmt.Errorf("read %s: %w", path, err)
	}
	return true, skipped, nil
}
