package inventory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Watcher holds the current Index of an inventory file and reloads it when the
// file changes. A file that fails to parse is reported and the previous Index
// stays in force.
type Watcher struct {
	path   string
	logger log.Logger
	index  atomic.Pointer[Index]

	mu      sync.Mutex // serialises reloads
	modTime time.Time
	size    int64
	// seenMod and seenSize are the file's stat at the previous poll: a
	// changed file is read only once it has not changed for a poll, so one
	// written in place (truncated, then written) is not read half written
	// and reported broken.
	seenMod  time.Time
	seenSize int64
	sum      [sha256.Size]byte
	okCount  atomic.Uint64
	badCount atomic.Uint64
	lastOK   atomic.Bool
}

// NewWatcher loads path; a missing or invalid file is an error.
func NewWatcher(path string, logger log.Logger) (*Watcher, error) {
	w := &Watcher{path: path, logger: logger}
	data, fi, err := w.read()
	if err != nil {
		return nil, err
	}
	inv, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	w.index.Store(NewIndex(inv))
	w.modTime, w.size, w.sum = fi.ModTime(), fi.Size(), sha256.Sum256(data)
	w.lastOK.Store(true)
	return w, nil
}

func (w *Watcher) read() ([]byte, os.FileInfo, error) {
	fi, err := os.Stat(w.path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(w.path)
	return data, fi, err
}

// Index returns the current index. It is one atomic load.
func (w *Watcher) Index() *Index { return w.index.Load() }

// Reload re-reads the file. On error the old index stays and the error is
// logged and returned.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reloadLocked()
}

func (w *Watcher) reloadLocked() error {
	data, fi, err := w.read()
	if err == nil {
		var inv *Inventory
		if inv, err = Parse(data, w.path); err == nil {
			w.index.Store(NewIndex(inv))
			w.modTime, w.size, w.sum = fi.ModTime(), fi.Size(), sha256.Sum256(data)
			w.okCount.Add(1)
			w.lastOK.Store(true)
			level.Info(w.logger).Log("msg", "loaded kiosk inventory", "file", w.path, "kiosks", len(inv.Kiosks), "sites", len(inv.Sites))
			return nil
		}
	}
	w.badCount.Add(1)
	w.lastOK.Store(false)
	level.Error(w.logger).Log("msg", "cannot reload kiosk inventory; keeping the previous one", "file", w.path, "err", err)
	return err
}

// Run checks the file every interval and reloads it when its content changed,
// until ctx is done.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.checkChanged()
		}
	}
}

func (w *Watcher) checkChanged() {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := os.Stat(w.path)
	if err != nil {
		if w.lastOK.Load() {
			w.reloadLocked() // reports the missing file once
		}
		return
	}
	if fi.ModTime().Equal(w.modTime) && fi.Size() == w.size {
		return
	}
	if !fi.ModTime().Equal(w.seenMod) || fi.Size() != w.seenSize {
		w.seenMod, w.seenSize = fi.ModTime(), fi.Size()
		return
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return
	}
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], w.sum[:]) {
		w.modTime, w.size = fi.ModTime(), fi.Size()
		return
	}
	if w.reloadLocked() != nil {
		// Remember the broken version, so it is reported once, not every poll.
		w.modTime, w.size, w.sum = fi.ModTime(), fi.Size(), sum
	}
}

// LastReloadSuccess reports whether the last load succeeded.
func (w *Watcher) LastReloadSuccess() bool { return w.lastOK.Load() }

// ReloadsTotal returns the successful and failed reloads since start.
func (w *Watcher) ReloadsTotal() (ok, failed uint64) { return w.okCount.Load(), w.badCount.Load() }
