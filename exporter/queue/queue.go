// Package queue is the exporter's durable push queue: a FIFO of records (one
// gather each, ready to send) in segment files on disk, with the set of
// acknowledged records kept beside them. A record that Append returned is on
// disk (fsync'd); a record is only gone once Ack'd, dropped by the disk limit
// (oldest first, counted) or Drop'd. So nothing is lost across a WAN outage, a
// kill -9 or a power cut, and what kioskmon acknowledged is not sent again
// after a restart (what was sent but not yet acknowledged may be: kioskmon
// de-duplicates identical samples).
package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Config configures a queue. Zero values mean defaults.
type Config struct {
	// Dir holds the segments and the acknowledgement file. Required.
	Dir string
	// MaxBytes bounds the segments' total size; past it the oldest segment is
	// dropped, acknowledged or not. Default 256 MiB (about a week of a kiosk's
	// gathers at 15 s).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment is started. Default 4 MiB.
	SegmentBytes int64
	// NoSync skips fsync (tests and the simulator only).
	NoSync bool
}

func (c *Config) defaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 256 << 20
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 4 << 20
	}
	if c.SegmentBytes > c.MaxBytes/4 {
		c.SegmentBytes = max(c.MaxBytes/4, 1)
	}
}

// Entry describes a record waiting to be acknowledged.
type Entry struct {
	Seq     uint64
	Samples int
	// Oldest is the timestamp of the record's oldest sample (ms).
	Oldest int64
	// Appended is when this process appended the record; zero for records
	// found on disk at Open.
	Appended time.Time
	seg      uint64 // first seq of the segment holding the record
	offset   int64  // of the payload in the segment
	size     int
}

// Stats describe the queue now.
type Stats struct {
	Records        int
	Samples        int64
	Bytes          int64 // segments on disk
	Oldest         int64 // ms; 0 when empty
	DroppedSamples int64 // by the disk limit or Drop, since Open
}

const (
	segmentSuffix = ".seg"
	ackFile       = "acked"
	// record header: payload length, CRC-32C of the rest, seq, samples, oldest.
	headerSize = 4 + 4 + 8 + 4 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks a damaged acknowledgement file.
var ErrCorrupt = errors.New("corrupt queue file")

// Queue is safe for concurrent use.
type Queue struct {
	cfg    Config
	logger log.Logger

	mu       sync.Mutex
	pending  []Entry         // unacknowledged, by seq
	acked    map[uint64]bool // acknowledged seqs above the watermark, in segments still on disk
	segments []segment       // on disk, oldest first; the last one is written
	cur      *os.File
	nextSeq  uint64
	dropped  int64
	notify   chan struct{}
}

type segment struct {
	first uint64 // seq of its first record (its name)
	size  int64
}

// Open opens or creates the queue in cfg.Dir. A record cut short by a crash
// at the end of the newest segment was never returned by Append and is
// removed.
func Open(cfg Config, logger log.Logger) (*Queue, error) {
	cfg.defaults()
	if cfg.Dir == "" {
		return nil, errors.New("queue: no directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create queue directory: %w", err)
	}
	q := &Queue{cfg: cfg, logger: logger, acked: map[uint64]bool{}, notify: make(chan struct{}, 1)}
	watermark, extra, err := readAcks(filepath.Join(cfg.Dir, ackFile))
	if err != nil {
		return nil, err
	}
	for _, s := range extra {
		q.acked[s] = true
	}
	names, err := filepath.Glob(filepath.Join(cfg.Dir, "*"+segmentSuffix))
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, n := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), segmentSuffix), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("queue: unexpected file %s: move it out of the queue directory", n)
		}
		firsts = append(firsts, first)
	}
	slices.Sort(firsts)
	q.nextSeq = watermark
	for i, first := range firsts {
		last := i == len(firsts)-1
		size, err := q.scanSegment(first, watermark, last)
		if err != nil {
			return nil, err
		}
		q.segments = append(q.segments, segment{first: first, size: size})
	}
	for s := range q.acked {
		if s < watermark || s >= q.nextSeq {
			delete(q.acked, s)
		}
	}
	if err := q.removeAckedSegmentsLocked(); err != nil {
		return nil, err
	}
	if len(q.segments) == 0 {
		if err := q.startSegmentLocked(); err != nil {
			return nil, err
		}
	} else {
		last := q.segments[len(q.segments)-1]
		f, err := os.OpenFile(q.segmentPath(last.first), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		q.cur = f
	}
	return q, nil
}

// scanSegment indexes a segment's unacknowledged records. In the newest
// segment a damaged tail is truncated; in older ones damage ends the scan
// with an error logged, keeping the records before it.
func (q *Queue) scanSegment(first, watermark uint64, newest bool) (int64, error) {
	path := q.segmentPath(first)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	hdr := make([]byte, headerSize)
	var payload []byte
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if err == io.EOF {
				return off, nil
			}
			break // torn header
		}
		n := binary.LittleEndian.Uint32(hdr)
		if int64(n) > q.cfg.MaxBytes {
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		crc := crc32.Update(crc32.Checksum(hdr[8:], castagnoli), castagnoli, payload)
		if crc != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		seq := binary.LittleEndian.Uint64(hdr[8:])
		e := Entry{Seq: seq, Samples: int(binary.LittleEndian.Uint32(hdr[16:])), Oldest: int64(binary.LittleEndian.Uint64(hdr[20:])),
			seg: first, offset: off + headerSize, size: int(n)}
		if seq >= watermark && !q.acked[seq] {
			q.pending = append(q.pending, e)
		}
		q.nextSeq = max(q.nextSeq, seq+1)
		off += headerSize + int64(n)
	}
	if !newest {
		level.Error(q.logger).Log("msg", "push queue segment is damaged; the records after the damage are lost", "segment", path, "offset", off)
		return off, nil
	}
	level.Warn(q.logger).Log("msg", "removing a record cut short by a crash at the end of the push queue", "segment", path, "offset", off)
	if err := f.Truncate(off); err != nil {
		return 0, fmt.Errorf("truncate %s: %w", path, err)
	}
	return off, nil
}

func (q *Queue) segmentPath(first uint64) string {
	return filepath.Join(q.cfg.Dir, fmt.Sprintf("%020d%s", first, segmentSuffix))
}

func (q *Queue) startSegmentLocked() error {
	if q.cur != nil {
		if err := q.cur.Close(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(q.segmentPath(q.nextSeq), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create push queue segment: %w", err)
	}
	q.cur = f
	q.segments = append(q.segments, segment{first: q.nextSeq})
	return q.syncDir()
}

func (q *Queue) syncDir() error {
	if q.cfg.NoSync {
		return nil
	}
	d, err := os.Open(q.cfg.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append adds a record holding samples (oldest at the given ms timestamp) and
// returns once it is on disk.
func (q *Queue) Append(payload []byte, samples int, oldest int64) (uint64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cur == nil {
		return 0, errors.New("push queue is closed")
	}
	if q.segments[len(q.segments)-1].size >= q.cfg.SegmentBytes {
		if err := q.startSegmentLocked(); err != nil {
			return 0, err
		}
	}
	seq := q.nextSeq
	rec := make([]byte, headerSize, headerSize+len(payload))
	binary.LittleEndian.PutUint32(rec, uint32(len(payload)))
	binary.LittleEndian.PutUint64(rec[8:], seq)
	binary.LittleEndian.PutUint32(rec[16:], uint32(samples))
	binary.LittleEndian.PutUint64(rec[20:], uint64(oldest))
	rec = append(rec, payload...)
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli))
	seg := &q.segments[len(q.segments)-1]
	if _, err := q.cur.Write(rec); err != nil {
		return 0, fmt.Errorf("write push queue: %w", err)
	}
	if !q.cfg.NoSync {
		if err := q.cur.Sync(); err != nil {
			return 0, fmt.Errorf("sync push queue: %w", err)
		}
	}
	q.pending = append(q.pending, Entry{Seq: seq, Samples: samples, Oldest: oldest, Appended: time.Now(),
		seg: seg.first, offset: seg.size + headerSize, size: len(payload)})
	seg.size += int64(len(rec))
	q.nextSeq++
	if err := q.enforceLimitLocked(); err != nil {
		return seq, err
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return seq, nil
}

// enforceLimitLocked drops the oldest segments while the queue is over its
// limit, counting the samples they still held.
func (q *Queue) enforceLimitLocked() error {
	for len(q.segments) > 1 && q.totalBytesLocked() > q.cfg.MaxBytes {
		oldest := q.segments[0]
		keep := q.pending[:0]
		var lost int64
		for _, e := range q.pending {
			if e.seg == oldest.first {
				lost += int64(e.Samples)
				continue
			}
			keep = append(keep, e)
		}
		q.pending = keep
		q.dropped += lost
		level.Warn(q.logger).Log("msg", "push queue is full: dropped its oldest segment", "samples", lost, "limit_bytes", q.cfg.MaxBytes)
		if err := os.Remove(q.segmentPath(oldest.first)); err != nil {
			return err
		}
		q.segments = q.segments[1:]
		if err := q.writeAcksLocked(); err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) totalBytesLocked() int64 {
	var n int64
	for _, s := range q.segments {
		n += s.size
	}
	return n
}

// Notify returns a channel that receives after an Append.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

// Pending returns the records not yet acknowledged, oldest first.
func (q *Queue) Pending() []Entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.pending)
}

// Read returns a record's payload. It fails if the record was dropped meanwhile.
func (q *Queue) Read(e Entry) ([]byte, error) {
	f, err := os.Open(q.segmentPath(e.seg))
	if err != nil {
		return nil, fmt.Errorf("read push queue record %d: %w", e.Seq, err)
	}
	defer f.Close()
	buf := make([]byte, e.size)
	if _, err := f.ReadAt(buf, e.offset); err != nil {
		return nil, fmt.Errorf("read push queue record %d: %w", e.Seq, err)
	}
	return buf, nil
}

// Ack marks records as delivered; their space is freed once a whole segment
// is delivered. It returns once the acknowledgement is on disk.
func (q *Queue) Ack(seqs ...uint64) error { return q.remove(seqs, false) }

// Drop removes records that will never be delivered (kioskmon refused them),
// counting their samples as dropped.
func (q *Queue) Drop(seqs ...uint64) error { return q.remove(seqs, true) }

func (q *Queue) remove(seqs []uint64, drop bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	gone := map[uint64]bool{}
	for _, s := range seqs {
		gone[s] = true
	}
	keep := q.pending[:0]
	for _, e := range q.pending {
		if gone[e.Seq] {
			q.acked[e.Seq] = true
			if drop {
				q.dropped += int64(e.Samples)
			}
			continue
		}
		keep = append(keep, e)
	}
	q.pending = keep
	if err := q.removeAckedSegmentsLocked(); err != nil {
		return err
	}
	return q.writeAcksLocked()
}

// removeAckedSegmentsLocked deletes segments, other than the one being
// written, that hold no pending record.
func (q *Queue) removeAckedSegmentsLocked() error {
	live := map[uint64]bool{}
	for _, e := range q.pending {
		live[e.seg] = true
	}
	keep := q.segments[:0]
	for i, s := range q.segments {
		if live[s.first] || i == len(q.segments)-1 {
			keep = append(keep, s)
			continue
		}
		if err := os.Remove(q.segmentPath(s.first)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	q.segments = keep
	return nil
}

// writeAcksLocked stores the watermark (every seq below it is acknowledged)
// and the acknowledged seqs above it, atomically.
func (q *Queue) writeAcksLocked() error {
	watermark := q.nextSeq
	if len(q.pending) > 0 {
		watermark = q.pending[0].Seq
	}
	var extra []uint64
	for s := range q.acked {
		if s < watermark {
			delete(q.acked, s)
		} else {
			extra = append(extra, s)
		}
	}
	slices.Sort(extra)
	buf := binary.LittleEndian.AppendUint64(nil, watermark)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(extra)))
	for _, s := range extra {
		buf = binary.LittleEndian.AppendUint64(buf, s)
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	path := filepath.Join(q.cfg.Dir, ackFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write push queue acknowledgements: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil && !q.cfg.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write push queue acknowledgements: %w", err)
	}
	return q.syncDir()
}

func readAcks(path string) (watermark uint64, extra []uint64, err error) {
	buf, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	if len(buf) < 16 || crc32.Checksum(buf[:len(buf)-4], castagnoli) != binary.LittleEndian.Uint32(buf[len(buf)-4:]) {
		return 0, nil, fmt.Errorf("%w: %s (delete it to resend everything still queued)", ErrCorrupt, path)
	}
	watermark = binary.LittleEndian.Uint64(buf)
	n := binary.LittleEndian.Uint32(buf[8:])
	if int(n)*8+16 != len(buf) {
		return 0, nil, fmt.Errorf("%w: %s (delete it to resend everything still queued)", ErrCorrupt, path)
	}
	for i := range int(n) {
		extra = append(extra, binary.LittleEndian.Uint64(buf[12+8*i:]))
	}
	return watermark, extra, nil
}

// Stats returns the queue's current figures.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := Stats{Records: len(q.pending), Bytes: q.totalBytesLocked(), DroppedSamples: q.dropped}
	for i, e := range q.pending {
		st.Samples += int64(e.Samples)
		if i == 0 || e.Oldest < st.Oldest {
			st.Oldest = e.Oldest
		}
	}
	return st
}

// Close closes the queue; what is pending stays on disk for the next Open.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cur == nil {
		return nil
	}
	err := q.cur.Close()
	q.cur = nil
	return err
}
