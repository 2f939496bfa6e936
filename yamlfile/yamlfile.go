// Package yamlfile reads the project's configuration files: strict YAML
// (unknown fields are errors) whose every error names the file and line, and
// the unit types they use (durations with days, byte sizes with KiB/MiB/GiB).
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Lines finds the line of a field in a parsed file, for validation errors.
type Lines struct{ root *yaml.Node }

// Decode decodes data strictly into v (over whatever v already holds, so
// defaults survive). Errors read "file:LINE: what is wrong".
func Decode(data []byte, file string, v any) (*Lines, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, errors.New(cleanError(err, file))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.New(cleanError(err, file))
	}
	return &Lines{root: &root}, nil
}

var lineRe = regexp.MustCompile(`line (\d+): `)

// cleanError turns yaml.v3's "yaml: unmarshal errors:\n  line 3: ..." into
// "file:3: ..." lines.
func cleanError(err error, file string) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if m := lineRe.FindStringSubmatchIndex(l); m != nil && m[0] == 0 {
			l = file + ":" + l[m[2]:m[3]] + ": " + l[m[1]:]
		} else if strings.HasPrefix(l, "line ") {
			l = file + ":" + strings.TrimPrefix(l, "line ")
		} else {
			l = file + ": " + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// Root returns the parsed document, for callers that index it themselves.
func (l *Lines) Root() *yaml.Node { return l.root }

// Line returns the line of a dotted field path ("push.url"; a number selects
// a list item: "collectors.printers.0.url"), or 0 if the file does not set it.
func (l *Lines) Line(path string) int {
	if l == nil || l.root == nil || len(l.root.Content) == 0 {
		return 0
	}
	n := l.root.Content[0]
	line := 0
	for _, key := range strings.Split(path, ".") {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return 0
			}
		case yaml.SequenceNode:
			i := 0
			for _, c := range key {
				if c < '0' || c > '9' {
					return line
				}
				i = i*10 + int(c-'0')
			}
			if i >= len(n.Content) {
				return 0
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

// FieldError is a validation error about one field, named by its dotted path
// below the value that was validated ("targets.2.host"). Whoever owns the
// file prefixes the path and turns it into file:line (see Lines.Line).
type FieldError struct {
	Field string
	Msg   string
}

// Fieldf returns a FieldError for field.
func Fieldf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
