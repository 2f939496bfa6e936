package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// apiCommand starts `kioskmon NAME VERB`: usage on no verb or help, else
// the verb and its flag set with --server and --token.
func apiCommand(name, usage string, args []string, stderr io.Writer) (string, *flag.FlagSet, *apiClient, error) {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return "", nil, nil, fmt.Errorf("%s: give a command", name)
		}
		return "", nil, nil, flag.ErrHelp
	}
	fs := flag.NewFlagSet("kioskmon "+name+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	return args[0], fs, clientFlags(fs), nil
}

// apiClient talks to a kioskmon server's JSON API with a token.
type apiClient struct {
	server string
	token  string
	http   *http.Client
}

// clientFlags adds --server and --token to fs.
func clientFlags(fs *flag.FlagSet) *apiClient {
	c := &apiClient{http: &http.Client{Timeout: 2 * time.Minute}}
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8428", "kioskmon server URL")
	fs.StringVar(&c.token, "token", "", "API token (default: $KIOSKMON_TOKEN); the first admin token is in the server's data directory, file admin-token")
	return c
}

func (c *apiClient) check() error {
	if c.token == "" {
		c.token = os.Getenv("KIOSKMON_TOKEN")
	}
	if c.token == "" {
		return fmt.Errorf("no token: give --token or set KIOSKMON_TOKEN (an admin can issue one with kioskmon tokens add)")
	}
	c.server = strings.TrimRight(c.server, "/")
	return nil
}

// call sends body (JSON-encoded, if not nil) and decodes the answer's data
// into out. A refusal comes back as an error carrying the server's message.
func (c *apiClient) call(method, path string, body, out any) error {
	raw, _, err := c.raw(method, path, body)
	if err != nil {
		return err
	}
	var reply struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("%s %s: answer is not JSON: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(reply.Data, out)
}

// raw sends a request and returns the body of a 2xx answer.
func (c *apiClient) raw(method, path string, body any) ([]byte, http.Header, error) {
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.server+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is kioskmon serve running at %s? see --server)", err, c.server)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	return b, resp.Header, nil
}

// parseWhen reads a time given on the command line: RFC 3339, or a
// duration from now ("2h" is two hours from now, "-10m" ten minutes ago).
func parseWhen(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(d).Truncate(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: give RFC 3339 (2026-11-03T09:30:00+08:00) or a duration from now (2h, -10m)", flagName, s)
}
