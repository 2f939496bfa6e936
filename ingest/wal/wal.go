// Package wal is kioskmon's write-ahead log: an accepted sample is on disk
// before its request is acknowledged, so it survives kill -9 and power loss.
//
// Writes are group-committed: concurrent requests append encoded records to a
// shared buffer and one flusher writes and fsyncs that buffer for all of them.
// Each segment carries its own dictionary of series, so a series' labels are
// written once per segment and its samples take a few bytes each.
//
// The log is trimmed at checkpoints: the current segment is closed, the storage
// is flushed durably, and every closed segment is deleted. A crash at any point
// leaves either the segment or the flushed storage holding each sample.
package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kioskmon/kioskmon/ingest/store"
)

const (
	segmentMagic  = "KMWAL002"
	segmentSuffix = ".wal"
	// recordHeaderSize is the length and the CRC-32C of the payload. The CRC
	// is seeded with the segment's index, so that records left in a recycled
	// file from its previous use never pass for this segment's.
	recordHeaderSize = 8
	// The first byte of a record's payload is its type.
	recordSamples = 1
	recordSeal    = 2 // the last record of a segment closed in order
	// spareName is a closed segment kept to be reused as the next one: its
	// blocks are allocated and written, so an fdatasync after appending to it
	// flushes data only, not the file system's metadata.
	spareName = "spare.wal-recycle"
	// maxRecordSize bounds a record read back, so a corrupt length cannot make
	// replay allocate without limit.
	maxRecordSize = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("write-ahead log is closed")

// Config configures the log. Zero values mean defaults.
type Config struct {
	// Dir holds the segment files. Required.
	Dir string
	// NoSync skips fsync. Acknowledged samples may then be lost on power loss
	// (not on a process crash). For benchmarks that measure the cost of fsync.
	NoSync bool
	// CommitDelay is how long the flusher waits after the first record of a
	// batch for others to join it, trading latency for fewer fsyncs. It only
	// waits while writers are concurrent (the previous commit carried more
	// than one record), so a lone writer is not slowed down. Each fsync costs
	// about 0.1 ms of CPU; under load, one per request costs a third of the
	// ingest rate. 0 never waits.
	CommitDelay time.Duration
	// SegmentBytes is the size a new segment file is zero-filled to. Default 64 MiB.
	SegmentBytes int64
}

// Stats are cumulative counters for self-metrics.
type Stats struct {
	Commits       uint64 // fsyncs
	RecordsBytes  uint64 // bytes written
	Samples       uint64 // samples written
	Checkpoints   uint64
	SegmentsTrims uint64
}

// WAL is an open write-ahead log. It is safe for concurrent use.
type WAL struct {
	cfg    Config
	logger log.Logger

	// inflight is held shared by each Write from its append until its rows are
	// in the storage, and exclusively by a checkpoint while it switches
	// segments: a segment is only deleted once all its rows reached storage.
	inflight sync.RWMutex

	mu       sync.Mutex // guards everything below
	seg      *os.File
	segIndex uint64
	series   map[uint64]uint32 // hash of raw metric name -> id in this segment
	ids      []uint32          // scratch for encodeLocked
	newRows  []int             // scratch for encodeLocked
	buf      []byte            // encoded records not yet handed to the flusher
	records  int               // records in buf
	batch    *batch            // the batch the records in buf belong to
	closed   bool
	stats    Stats
	spare    []byte
	flushReq chan struct{}
	flushing sync.WaitGroup
	idle     *sync.Cond // signalled when the flusher has nothing in hand
	busy     bool       // the flusher holds a batch it has not finished
}

type batch struct {
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Open opens the log in cfg.Dir, creating it if needed. The segments already
// there are left for Replay; new writes go to a fresh segment.
func Open(cfg Config, logger log.Logger) (*WAL, error) {
	if cfg.Dir == "" {
		return nil, errors.New("write-ahead log directory is empty")
	}
	if cfg.SegmentBytes == 0 {
		cfg.SegmentBytes = 64 << 20
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create write-ahead log directory: %w", err)
	}
	indexes, err := segmentIndexes(cfg.Dir)
	if err != nil {
		return nil, err
	}
	w := &WAL{
		cfg:      cfg,
		logger:   logger,
		batch:    newBatch(),
		flushReq: make(chan struct{}, 1),
	}
	w.idle = sync.NewCond(&w.mu)
	next := uint64(1)
	if len(indexes) > 0 {
		next = indexes[len(indexes)-1] + 1
	}
	if err := w.openSegmentLocked(next); err != nil {
		return nil, err
	}
	w.flushing.Add(1)
	go w.flushLoop()
	return w, nil
}

// Write appends rows to the log, hands them to apply (the storage) and returns
// once the log is durable on disk. The rows are acknowledged when it returns nil.
func (w *WAL) Write(rows []store.Row, apply func([]store.Row) error) error {
	wait, err := w.Append(rows, apply)
	if err != nil {
		return err
	}
	return wait()
}

// Append appends rows to the log and hands them to apply (the storage). The
// returned function waits until the log is durable on disk; the caller may
// reuse rows before calling it.
func (w *WAL) Append(rows []store.Row, apply func([]store.Row) error) (wait func() error, err error) {
	if len(rows) == 0 {
		return func() error { return nil }, nil
	}
	w.inflight.RLock()
	b, err := w.append(rows)
	if err == nil {
		err = apply(rows)
	}
	w.inflight.RUnlock()
	if err != nil {
		return nil, err
	}
	return b.wait, nil
}

func (b *batch) wait() error {
	<-b.done
	return b.err
}

func (w *WAL) append(rows []store.Row) (*batch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	start := len(w.buf)
	w.buf = append(w.buf, make([]byte, recordHeaderSize)...)
	w.buf = append(w.buf, recordSamples)
	w.buf = w.encodeLocked(w.buf, rows)
	w.finishRecordLocked(start)
	w.records++
	w.stats.Samples += uint64(len(rows))
	select {
	case w.flushReq <- struct{}{}:
	default:
	}
	return w.batch, nil
}

// finishRecordLocked fills in the header of the record starting at start.
func (w *WAL) finishRecordLocked(start int) {
	payload := w.buf[start+recordHeaderSize:]
	binary.LittleEndian.PutUint32(w.buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(w.buf[start+4:], recordChecksum(w.segIndex, payload))
}

func recordChecksum(segIndex uint64, payload []byte) uint32 {
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], segIndex)
	return crc32.Update(crc32.Checksum(seed[:], castagnoli), castagnoli, payload)
}

// sealLocked writes the seal record and waits until it is on disk.
func (w *WAL) sealLocked() {
	start := len(w.buf)
	w.buf = append(w.buf, make([]byte, recordHeaderSize)...)
	w.buf = append(w.buf, recordSeal)
	w.finishRecordLocked(start)
	select {
	case w.flushReq <- struct{}{}:
	default:
	}
	w.waitFlushedLocked()
}

// encodeLocked appends one record payload: the series new to this segment,
// then the samples as (series id, timestamp delta, value bits).
func (w *WAL) encodeLocked(dst []byte, rows []store.Row) []byte {
	ids := slices.Grow(w.ids[:0], len(rows))[:len(rows)]
	newRows := w.newRows[:0]
	for i := range rows {
		h := xxhash.Sum64(rows[i].MetricNameRaw)
		id, ok := w.series[h]
		if !ok {
			id = uint32(len(w.series))
			w.series[h] = id
			newRows = append(newRows, i)
		}
		ids[i] = id
	}
	dst = binary.AppendUvarint(dst, uint64(len(newRows)))
	for _, i := range newRows {
		dst = binary.AppendUvarint(dst, uint64(len(rows[i].MetricNameRaw)))
		dst = append(dst, rows[i].MetricNameRaw...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(rows)))
	base := rows[0].Timestamp
	dst = binary.AppendVarint(dst, base)
	for i := range rows {
		dst = binary.AppendUvarint(dst, uint64(ids[i]))
		dst = binary.AppendVarint(dst, rows[i].Timestamp-base)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(rows[i].Value))
	}
	w.ids, w.newRows = ids, newRows
	return dst
}

func (w *WAL) flushLoop() {
	defer w.flushing.Done()
	concurrent := false
	for range w.flushReq {
		if concurrent && w.cfg.CommitDelay > 0 {
			time.Sleep(w.cfg.CommitDelay)
		}
		w.mu.Lock()
		if len(w.buf) == 0 {
			w.mu.Unlock()
			continue
		}
		data, b, f := w.buf, w.batch, w.seg
		concurrent = w.records > 1
		w.buf, w.spare, w.records = w.spare[:0], nil, 0
		w.batch = newBatch()
		w.busy = true
		w.mu.Unlock()

		_, err := f.Write(data)
		if err == nil && !w.cfg.NoSync {
			err = syncData(f)
		}
		if err != nil {
			err = fmt.Errorf("write-ahead log %s: %w", f.Name(), err)
			level.Error(w.logger).Log("msg", "cannot write the write-ahead log; requests fail until it recovers", "err", err)
		}
		b.err = err
		close(b.done)

		w.mu.Lock()
		w.stats.Commits++
		w.stats.RecordsBytes += uint64(len(data))
		w.spare = data[:0]
		w.busy = false
		w.idle.Broadcast()
		w.mu.Unlock()
	}
}

// waitFlushedLocked waits until every appended record is written and synced.
func (w *WAL) waitFlushedLocked() {
	for len(w.buf) > 0 || w.busy {
		select {
		case w.flushReq <- struct{}{}:
		default:
		}
		w.idle.Wait()
	}
}

func (w *WAL) openSegmentLocked(index uint64) error {
	path := filepath.Join(w.cfg.Dir, segmentName(index))
	spare := filepath.Join(w.cfg.Dir, spareName)
	var f *os.File
	if err := os.Rename(spare, path); err == nil {
		if f, err = os.OpenFile(path, os.O_WRONLY, 0o644); err != nil {
			return fmt.Errorf("open recycled write-ahead log segment: %w", err)
		}
	} else {
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return fmt.Errorf("create write-ahead log segment: %w", err)
		}
		if err := zeroFill(f, w.cfg.SegmentBytes); err != nil {
			f.Close()
			return fmt.Errorf("allocate write-ahead log segment %s: %w", path, err)
		}
	}
	if _, err := f.WriteAt([]byte(segmentMagic), 0); err != nil {
		f.Close()
		return fmt.Errorf("write segment header %s: %w", path, err)
	}
	if _, err := f.Seek(int64(len(segmentMagic)), io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek in segment %s: %w", path, err)
	}
	if !w.cfg.NoSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync segment %s: %w", path, err)
		}
		if err := syncDir(w.cfg.Dir); err != nil {
			f.Close()
			return err
		}
	}
	w.seg, w.segIndex = f, index
	w.series = make(map[uint64]uint32, len(w.series))
	return nil
}

// zeroFill writes n zero bytes at the start of f.
func zeroFill(f *os.File, n int64) error {
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), n-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint trims the log: it starts a new segment, calls flush, which must
// make every row handed to the storage so far durable, and then deletes the
// older segments. Concurrent writes wait only while the segment is switched.
func (w *WAL) Checkpoint(flush func() error) error {
	w.inflight.Lock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.inflight.Unlock()
		return ErrClosed
	}
	w.sealLocked()
	old, oldIndex := w.seg, w.segIndex
	err := w.openSegmentLocked(oldIndex + 1)
	w.mu.Unlock()
	w.inflight.Unlock()
	if err != nil {
		return err
	}
	old.Close()

	if err := flush(); err != nil {
		return fmt.Errorf("checkpoint: flush storage: %w", err)
	}
	removed, err := w.removeSegmentsBefore(oldIndex + 1)
	w.mu.Lock()
	w.stats.Checkpoints++
	w.stats.SegmentsTrims += uint64(removed)
	w.mu.Unlock()
	return err
}

func (w *WAL) removeSegmentsBefore(index uint64) (int, error) {
	indexes, err := segmentIndexes(w.cfg.Dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, i := range indexes {
		if i >= index {
			continue
		}
		path := filepath.Join(w.cfg.Dir, segmentName(i))
		// Keep one old segment to recycle; delete the rest.
		if _, err := os.Stat(filepath.Join(w.cfg.Dir, spareName)); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(path, filepath.Join(w.cfg.Dir, spareName)); err == nil {
				removed++
				continue
			}
		}
		if err := os.Remove(path); err != nil {
			return removed, fmt.Errorf("remove write-ahead log segment: %w", err)
		}
		removed++
	}
	if removed > 0 && !w.cfg.NoSync {
		return removed, syncDir(w.cfg.Dir)
	}
	return removed, nil
}

// Size returns the bytes in the log's segments on disk.
func (w *WAL) Size() int64 {
	indexes, err := segmentIndexes(w.cfg.Dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, i := range indexes {
		if fi, err := os.Stat(filepath.Join(w.cfg.Dir, segmentName(i))); err == nil {
			total += fi.Size()
		}
	}
	return total
}

// Stats returns the cumulative counters.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Close writes what is buffered and closes the log. Segments stay on disk
// until a checkpoint; the server checkpoints after closing ingest.
func (w *WAL) Close() error {
	w.inflight.Lock()
	defer w.inflight.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.sealLocked()
	w.closed = true
	close(w.flushReq)
	seg := w.seg
	w.mu.Unlock()
	w.flushing.Wait()
	return seg.Close()
}

// ReplayStats tells what Replay found.
type ReplayStats struct {
	Segments int
	Samples  int64
	// CorruptSegs counts segments that end before their seal although a newer
	// segment exists: their records after the damage are lost.
	CorruptSegs int
}

// Replay reads every segment older than the one Open started, in order, and
// hands their rows to apply in batches. It must be called right after Open.
// A segment's records end at its seal, or, for the newest one (the segment
// being written when the process died), at the first record that is not
// whole: a write cut short by the crash, never acknowledged.
func (w *WAL) Replay(apply func([]store.Row) error) (ReplayStats, error) {
	var st ReplayStats
	indexes, err := segmentIndexes(w.cfg.Dir)
	if err != nil {
		return st, err
	}
	w.mu.Lock()
	current := w.segIndex
	w.mu.Unlock()
	var old []uint64
	for _, i := range indexes {
		if i < current {
			old = append(old, i)
		}
	}
	for n, i := range old {
		path := filepath.Join(w.cfg.Dir, segmentName(i))
		samples, sealed, err := replaySegment(path, i, apply)
		st.Segments++
		st.Samples += samples
		if err != nil {
			return st, fmt.Errorf("replay %s: %w", path, err)
		}
		if !sealed && n < len(old)-1 {
			st.CorruptSegs++
			level.Error(w.logger).Log("msg", "write-ahead log segment ends before its seal; replayed the records before the damage", "segment", path, "samples", samples)
		}
	}
	return st, nil
}

func replaySegment(path string, index uint64, apply func([]store.Row) error) (samples int64, sealed bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(segmentMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != segmentMagic {
		// A segment whose creation the crash interrupted: nothing in it was acknowledged.
		return 0, false, nil
	}
	offset := int64(len(segmentMagic))
	var dec decoder
	var header [recordHeaderSize]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return samples, false, nil
		}
		size := binary.LittleEndian.Uint32(header[:])
		sum := binary.LittleEndian.Uint32(header[4:])
		if size == 0 || size > maxRecordSize || int64(size) > fi.Size()-offset-recordHeaderSize {
			return samples, false, nil // zero-filled space, or a torn length
		}
		payload = slices.Grow(payload[:0], int(size))[:size]
		if _, err := io.ReadFull(r, payload); err != nil {
			return samples, false, nil
		}
		if recordChecksum(index, payload) != sum {
			return samples, false, nil // torn, or left from the file's previous use
		}
		switch payload[0] {
		case recordSeal:
			return samples, true, nil
		case recordSamples:
		default:
			return samples, false, nil
		}
		rows, err := dec.decode(payload[1:])
		if err != nil {
			// The checksum matched, so this is a bug, not a torn write.
			return samples, false, fmt.Errorf("record at offset %d: %w", offset, err)
		}
		if err := apply(rows); err != nil {
			return samples, false, err
		}
		samples += int64(len(rows))
		offset += recordHeaderSize + int64(size)
	}
}

// decoder rebuilds rows from record payloads of one segment.
type decoder struct {
	series [][]byte
	rows   []store.Row
}

func (d *decoder) decode(p []byte) ([]store.Row, error) {
	newSeries, n := binary.Uvarint(p)
	if n <= 0 || newSeries > uint64(len(p)) {
		return nil, errors.New("bad series count")
	}
	p = p[n:]
	for range newSeries {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, errors.New("bad series name length")
		}
		// Copy: the payload buffer is reused for the next record.
		d.series = append(d.series, slices.Clone(p[n:n+int(l)]))
		p = p[n+int(l):]
	}
	count, n := binary.Uvarint(p)
	if n <= 0 || count > uint64(len(p)) {
		return nil, errors.New("bad sample count")
	}
	p = p[n:]
	base, n := binary.Varint(p)
	if n <= 0 {
		return nil, errors.New("bad base timestamp")
	}
	p = p[n:]
	d.rows = d.rows[:0]
	for range count {
		id, n := binary.Uvarint(p)
		if n <= 0 || id >= uint64(len(d.series)) {
			return nil, fmt.Errorf("unknown series id %d", id)
		}
		p = p[n:]
		delta, n := binary.Varint(p)
		if n <= 0 || len(p) < n+8 {
			return nil, errors.New("truncated sample")
		}
		value := math.Float64frombits(binary.LittleEndian.Uint64(p[n:]))
		p = p[n+8:]
		d.rows = append(d.rows, store.Row{MetricNameRaw: d.series[id], Timestamp: base + delta, Value: value})
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(p))
	}
	return d.rows, nil
}

func segmentName(index uint64) string { return fmt.Sprintf("%016d%s", index, segmentSuffix) }

func segmentIndexes(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list write-ahead log segments: %w", err)
	}
	var indexes []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok {
			continue
		}
		i, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		indexes = append(indexes, i)
	}
	sort.Slice(indexes, func(a, b int) bool { return indexes[a] < indexes[b] })
	return indexes, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
