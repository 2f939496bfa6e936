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

// This is a client of the upsd network protocol (Network UPS Tools,
// docs/net-protocol.txt) for the four requests the collector needs. It is
// written here rather than taken from github.com/robbiet480/go.nut, which has
// no deadlines or context (a hung upsd hangs the gather), reads each answer
// through a fresh bufio.Reader (losing whatever the previous one buffered),
// splits quoted values on '"' ignoring escapes, and sends a DESC and a TYPE
// request per variable.

// maxLine bounds one protocol line. upsd's own lines are far shorter (values
// are at most 256 bytes); the bound keeps a peer that never sends a newline
// from filling memory until the deadline.
const maxLine = 4096

// conn is one connection to upsd. Every read and write is bounded by the
// deadline set at dial and aborted when the dial's context is cancelled.
type conn struct {
	c    net.Conn
	r    *bufio.Reader
	stop func() bool // stops the context watch
}

// errUPSd is an ERR answer of upsd, such as ERR UNKNOWN-UPS or
// ERR DRIVER-NOT-CONNECTED: upsd works, the request about one UPS failed.
type errUPSd struct{ code string }

func (e *errUPSd) Error() string { return "upsd answered ERR " + e.code }

// dial connects to upsd at address. The connection's deadline is timeout
// from now or ctx's deadline, whichever comes first.
func dial(ctx context.Context, address string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	// A deadline in the past wakes every blocked read and write at once.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return &conn{c: c, r: bufio.NewReaderSize(c, maxLine), stop: stop}, nil
}

// Close says LOGOUT, so upsd does not log a dropped client, and closes the
// connection without waiting for the goodbye.
func (c *conn) Close() error {
	c.stop()
	fmt.Fprint(c.c, "LOGOUT\n")
	return c.c.Close()
}

// readLine returns the next line without its line end; an ERR line is
// returned as *errUPSd.
func (c *conn) readLine() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("upsd sent a line longer than %d bytes", maxLine)
	}
	if err != nil {
		return "", err
	}
	line := strings.TrimRight(string(b), "\r\n")
	if code, ok := strings.CutPrefix(line, "ERR "); ok {
		code, _, _ = strings.Cut(code, " ") // ERR CODE [extra]
		return "", &errUPSd{code: code}
	}
	return line, nil
}

// command sends a request that upsd answers with one "OK..." line, such as
// USERNAME or PASSWORD; arg is quoted, so it may hold spaces.
func (c *conn) command(verb, arg string) error {
	if _, err := fmt.Fprintf(c.c, "%s %s\n", verb, quote(arg)); err != nil {
		return fmt.Errorf("send %s: %w", verb, err)
	}
	line, err := c.readLine()
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	if !strings.HasPrefix(line, "OK") {
		return fmt.Errorf("upsd answered %q to %s", line, verb)
	}
	return nil
}

// list sends LIST args ("UPS", "VAR kiosk") and returns the words of each
// item line after the item's keyword and the list's own arguments: for
// `VAR kiosk ups.status "OL"` that is [ups.status OL].
func (c *conn) list(args string) ([][]string, error) {
	if _, err := fmt.Fprintf(c.c, "LIST %s\n", args); err != nil {
		return nil, fmt.Errorf("send LIST %s: %w", args, err)
	}
	begin, err := c.readLine()
	if err != nil {
		return nil, fmt.Errorf("LIST %s: %w", args, err)
	}
	if begin != "BEGIN LIST "+args {
		return nil, fmt.Errorf("upsd answered %q to LIST %s", begin, args)
	}
	skip := 1 + strings.Count(args, " ") // the keyword, then the arguments after the list's type
	var items [][]string
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, fmt.Errorf("LIST %s: %w", args, err)
		}
		if line == "END LIST "+args {
			return items, nil
		}
		words, err := splitQuoted(line)
		if err != nil {
			return nil, fmt.Errorf("LIST %s: %w", args, err)
		}
		if len(words) <= skip {
			return nil, fmt.Errorf("LIST %s: upsd sent a short line %q", args, line)
		}
		items = append(items, words[skip:])
	}
}

// quote returns s as one quoted protocol word.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// splitQuoted splits a protocol line into words; a "quoted word" may hold
// spaces and backslash escapes.
func splitQuoted(line string) ([]string, error) {
	var out []string
	for i := 0; i < len(line); {
		switch line[i] {
		case ' ', '\t':
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
			j := strings.IndexAny(line[i:], " \t")
			if j < 0 {
				j = len(line) - i
			}
			out = append(out, line[i:i+j])
			i += j
		}
	}
	return out, nil
}
