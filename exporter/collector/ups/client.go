package ups

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// conn speaks the upsd network protocol (Network UPS Tools, docs/net-protocol.txt):
// line-based requests, answers ending in END LIST or an "ERR CODE" line.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

// errUPSd is an ERR answer of upsd, such as ERR DRIVER-NOT-CONNECTED.
type errUPSd struct{ code string }

func (e *errUPSd) Error() string { return "upsd: " + e.code }

func dial(ctx context.Context, address string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	return &conn{c: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

func (c *conn) Close() error {
	fmt.Fprint(c.c, "LOGOUT\n")
	return c.c.Close()
}

func (c *conn) readLine() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if code, ok := strings.CutPrefix(line, "ERR "); ok {
		return "", &errUPSd{code: code}
	}
	return line, nil
}

// command sends a one-line command that upsd answers with "OK...".
func (c *conn) command(cmd string) error {
	if _, err := fmt.Fprintf(c.c, "%s\n", cmd); err != nil {
		return err
	}
	line, err := c.readLine()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "OK") {
		return fmt.Errorf("upsd answered %q to %s", line, strings.Fields(cmd)[0])
	}
	return nil
}

// list sends LIST args and returns the fields of each item line, without
// the item's keyword and the list's own arguments.
func (c *conn) list(args string) ([][]string, error) {
	if _, err := fmt.Fprintf(c.c, "LIST %s\n", args); err != nil {
		return nil, err
	}
	begin, err := c.readLine()
	if err != nil {
		return nil, err
	}
	if begin != "BEGIN LIST "+args {
		return nil, fmt.Errorf("upsd answered %q to LIST %s", begin, args)
	}
	prefix := len(strings.Fields(args)) - 1 // UPS: 0, VAR ups: 1
	var items [][]string
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if line == "END LIST "+args {
			return items, nil
		}
		fields, err := splitQuoted(line)
		if err != nil {
			return nil, err
		}
		if len(fields) < 1+prefix {
			return nil, fmt.Errorf("upsd sent a short list line %q", line)
		}
		items = append(items, fields[1+prefix:])
	}
}

// splitQuoted splits a protocol line into words; "quoted words" may hold
// spaces and backslash escapes.
func splitQuoted(line string) ([]string, error) {
	var out []string
	for i := 0; i < len(line); {
		switch line[i] {
		case ' ':
			i++
		case '"':
			var b strings.Builder
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				b.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("upsd sent an unterminated quoted word")
			}
			i++
			out = append(out, b.String())
		default:
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			out = append(out, line[i:i+j])
			i += j
		}
	}
	return out, nil
}
