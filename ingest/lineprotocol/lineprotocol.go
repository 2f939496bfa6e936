// Package lineprotocol parses InfluxDB line protocol as Telegraf's influxdb and
// influxdb_v2 outputs send it:
//
//	measurement[,tag=value...] field=value[,field=value...] [timestamp]
//
// Parsing does not allocate: names and values point into the input, except
// where escapes must be removed, and then into a scratch buffer of the Parser.
// String fields are not samples; they are skipped and counted.
package lineprotocol

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// Tag is one tag of a line.
type Tag struct {
	Key, Value []byte
}

// Field is one numeric field of a line. Booleans are 1 and 0.
type Field struct {
	Key   []byte
	Value float64
}

// Line is one parsed line. Its slices are valid until the next call of Next.
type Line struct {
	Measurement []byte
	Tags        []Tag
	Fields      []Field
	// Timestamp is in the unit of the precision, as sent; HasTimestamp tells
	// whether one was given.
	Timestamp    int64
	HasTimestamp bool
	// StringFields counts the string fields skipped on this line.
	StringFields int
}

// Parser iterates over the lines of a body.
type Parser struct {
	data    []byte
	lineNo  int
	line    Line
	scratch []byte
	err     error
}

// Reset makes p parse data from its first line.
func (p *Parser) Reset(data []byte) {
	p.data = data
	p.lineNo = 0
	p.err = nil
}

// Next advances to the next non-empty, non-comment line. It returns false at
// the end of the input. A line that does not parse makes Next return true with
// Err set; the caller may skip it and call Next again.
func (p *Parser) Next() bool {
	for len(p.data) > 0 {
		var raw []byte
		if i := bytes.IndexByte(p.data, '\n'); i >= 0 {
			raw, p.data = p.data[:i], p.data[i+1:]
		} else {
			raw, p.data = p.data, nil
		}
		p.lineNo++
		raw = bytes.TrimSuffix(raw, []byte{'\r'})
		raw = trimLeftSpace(raw)
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		p.err = p.parseLine(raw)
		return true
	}
	return false
}

// Line returns the current line.
func (p *Parser) Line() *Line { return &p.line }

// LineNumber returns the 1-based number of the current line in the input.
func (p *Parser) LineNumber() int { return p.lineNo }

// Err returns why the current line did not parse, or nil.
func (p *Parser) Err() error { return p.err }

var (
	errNoFields      = errors.New("no fields: a line needs at least one field after the measurement and tags, e.g. `cpu,host=a usage=0.5`")
	errNoMeasurement = errors.New("empty measurement name")
)

func (p *Parser) parseLine(s []byte) error {
	p.scratch = p.scratch[:0]
	l := &p.line
	l.Tags, l.Fields = l.Tags[:0], l.Fields[:0]
	l.HasTimestamp, l.Timestamp, l.StringFields = false, 0, 0

	// Measurement and tags end at the first unescaped space.
	end := indexUnescaped(s, ' ', false)
	if end < 0 {
		return errNoFields
	}
	head, rest := s[:end], trimLeftSpace(s[end+1:])
	comma := indexUnescaped(head, ',', false)
	measurement := head
	if comma >= 0 {
		measurement = head[:comma]
	}
	if len(measurement) == 0 {
		return errNoMeasurement
	}
	l.Measurement = p.unescape(measurement)
	for comma >= 0 {
		head = head[comma+1:]
		comma = indexUnescaped(head, ',', false)
		pair := head
		if comma >= 0 {
			pair = head[:comma]
		}
		eq := indexUnescaped(pair, '=', false)
		if eq <= 0 {
			return fmt.Errorf("tag %q is not key=value", pair)
		}
		if eq == len(pair)-1 {
			return fmt.Errorf("tag %q has an empty value", pair[:eq])
		}
		l.Tags = append(l.Tags, Tag{Key: p.unescape(pair[:eq]), Value: p.unescape(pair[eq+1:])})
	}

	// Fields end at the first space outside a quoted string.
	end = indexUnescaped(rest, ' ', true)
	fields := rest
	if end >= 0 {
		fields, rest = rest[:end], trimLeftSpace(rest[end+1:])
	} else {
		rest = nil
	}
	if len(fields) == 0 {
		return errNoFields
	}
	for len(fields) > 0 {
		next := indexUnescaped(fields, ',', true)
		pair := fields
		if next >= 0 {
			pair, fields = fields[:next], fields[next+1:]
		} else {
			fields = nil
		}
		eq := indexUnescaped(pair, '=', false)
		if eq <= 0 {
			return fmt.Errorf("field %q is not key=value", pair)
		}
		key, raw := pair[:eq], pair[eq+1:]
		if len(raw) == 0 {
			return fmt.Errorf("field %q has an empty value", key)
		}
		if raw[0] == '"' {
			if len(raw) < 2 || raw[len(raw)-1] != '"' {
				return fmt.Errorf("field %q: string value has no closing quote", key)
			}
			l.StringFields++
			continue
		}
		v, err := parseFieldValue(raw)
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		l.Fields = append(l.Fields, Field{Key: p.unescape(key), Value: v})
	}
	if len(rest) > 0 {
		ts, err := strconv.ParseInt(unsafeString(bytes.TrimRight(rest, " \t")), 10, 64)
		if err != nil {
			return fmt.Errorf("timestamp %q is not an integer", rest)
		}
		l.Timestamp, l.HasTimestamp = ts, true
	}
	return nil
}

func parseFieldValue(s []byte) (float64, error) {
	switch last := s[len(s)-1]; {
	case last == 'i' && len(s) > 1:
		n, err := strconv.ParseInt(unsafeString(s[:len(s)-1]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("integer value %q: %w", s, errors.Unwrap(err))
		}
		return float64(n), nil
	case last == 'u' && len(s) > 1:
		n, err := strconv.ParseUint(unsafeString(s[:len(s)-1]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unsigned value %q: %w", s, errors.Unwrap(err))
		}
		return float64(n), nil
	}
	switch string(s) {
	case "t", "T", "true", "True", "TRUE":
		return 1, nil
	case "f", "F", "false", "False", "FALSE":
		return 0, nil
	}
	v, err := strconv.ParseFloat(unsafeString(s), 64)
	if err != nil || math.IsInf(v, 0) && !bytes.Contains(bytes.ToLower(s), []byte("inf")) {
		return 0, fmt.Errorf("value %q is not a number, an integer (1i), an unsigned (1u), a boolean or a quoted string", s)
	}
	return v, nil
}

// indexUnescaped returns the index of the first c in s not preceded by a
// backslash (and, if quotes, not inside a double-quoted string), or -1.
func indexUnescaped(s []byte, c byte, quotes bool) int {
	// Fast path: escapes and quotes are rare, and IndexByte is vectorised.
	i := bytes.IndexByte(s, c)
	head := s
	if i >= 0 {
		head = s[:i]
	}
	if bytes.IndexByte(head, '\\') < 0 && (!quotes || bytes.IndexByte(head, '"') < 0) {
		return i
	}
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b == '\\':
			i++
		case quotes && b == '"':
			inQuote = !inQuote
		case b == c && !inQuote:
			return i
		}
	}
	return -1
}

// unescape removes the backslash of escaped spaces, commas, equals signs and
// backslashes. Without escapes it returns s itself.
func (p *Parser) unescape(s []byte) []byte {
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	start := len(p.scratch)
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case ' ', ',', '=', '\\', '"':
				i++
			}
		}
		p.scratch = append(p.scratch, s[i])
	}
	// A full slice expression, so that later appends to the scratch buffer
	// never write into a result handed out before.
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

func trimLeftSpace(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// unsafeString views b as a string without copying, for strconv calls whose
// result does not keep the string.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
