// Package inventory reads and writes the kiosk inventory: the YAML file that
// lists sites (with opening hours) and kiosks (with their maintenance provider
// and the hash of their push token), and authenticates kiosks against it.
package inventory

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kioskmon/kioskmon/internal/atomicfile"
	"github.com/kioskmon/kioskmon/yamlfile"
)

// Inventory is the content of an inventory file.
type Inventory struct {
	Version string  `yaml:"version"`
	Sites   []Site  `yaml:"sites,omitempty"`
	Kiosks  []Kiosk `yaml:"kiosks"`
}

// Site is a place kiosks stand in: a service hall, a police station.
type Site struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name,omitempty"`
	District string `yaml:"district,omitempty"`
	// Timezone of the opening hours; default Asia/Shanghai.
	Timezone string `yaml:"timezone,omitempty"`
	// OpeningHours; none means open 24x7. A kiosk's service hours are its
	// site's opening hours (Fujian 2022 §7.1).
	OpeningHours []OpeningHours `yaml:"opening_hours,omitempty"`
}

// OpeningHours opens a site on some days between two times of day.
type OpeningHours struct {
	// Days is a day (mon), a range (mon-fri) or a list (sat,sun).
	Days  string `yaml:"days"`
	Open  string `yaml:"open"`  // HH:MM
	Close string `yaml:"close"` // HH:MM, after Open; 24:00 allowed
}

// Kiosk is one self-service terminal.
type Kiosk struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name,omitempty"`
	Site     string `yaml:"site"`
	District string `yaml:"district"`
	// Provider is the maintenance provider under contract for this kiosk.
	Provider string  `yaml:"provider"`
	Lat      float64 `yaml:"lat,omitempty"`
	Lon      float64 `yaml:"lon,omitempty"`
	// DistanceKm is the distance to the provider's service point, which sets
	// the on-site arrival target.
	DistanceKm float64 `yaml:"distance_km,omitempty"`
	// TokenSHA256 is the hex SHA-256 of the kiosk's push token. A kiosk
	// without one cannot push.
	TokenSHA256 string `yaml:"token_sha256,omitempty"`
}

// DefaultTimezone is the timezone of opening hours when a site names none.
const DefaultTimezone = "Asia/Shanghai"

var idRe = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Parse reads an inventory. Unknown fields are errors; every error names the
// file and the line.
func Parse(data []byte, filename string) (*Inventory, error) {
	// A valid file, the common case, needs no node tree: a 100,000-kiosk
	// inventory parses in a fraction of the time and memory without one.
	// A file that fails is parsed again with the tree, for the lines.
	var fast Inventory
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fast); err == nil && fast.validate(nil, filename) == nil {
		return &fast, nil
	}
	var inv Inventory
	lines, err := yamlfile.Decode(data, filename, &inv)
	if err != nil {
		return nil, err
	}
	if len(lines.Root().Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty; it needs at least `version: v1`", filename)
	}
	if err := inv.validate(positions(lines.Root()), filename); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Load reads and parses the inventory file at path.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(data, path)
}

// Validate checks the inventory's content (the checks Parse makes).
func (inv *Inventory) Validate() error { return inv.validate(nil, "") }

// linePositions gives the line of each site and kiosk entry, and of their fields.
type linePositions struct {
	version int
	sites   []map[string]int // field -> line; "" is the entry's line
	kiosks  []map[string]int
}

func positions(root *yaml.Node) *linePositions {
	p := &linePositions{}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return p
	}
	top := root.Content[0]
	entries := func(seq *yaml.Node) []map[string]int {
		var out []map[string]int
		if seq.Kind != yaml.SequenceNode {
			return nil
		}
		for _, e := range seq.Content {
			m := map[string]int{"": e.Line}
			if e.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(e.Content); i += 2 {
					m[e.Content[i].Value] = e.Content[i].Line
				}
			}
			out = append(out, m)
		}
		return out
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		switch top.Content[i].Value {
		case "version":
			p.version = top.Content[i].Line
		case "sites":
			p.sites = entries(top.Content[i+1])
		case "kiosks":
			p.kiosks = entries(top.Content[i+1])
		}
	}
	return p
}

func (p *linePositions) line(list []map[string]int, i int, field string) int {
	if p == nil || i >= len(list) {
		return 0
	}
	if l, ok := list[i][field]; ok {
		return l
	}
	return list[i][""]
}

func (inv *Inventory) validate(pos *linePositions, filename string) error {
	at := func(line int) string {
		switch {
		case filename != "" && line > 0:
			return fmt.Sprintf("%s:%d: ", filename, line)
		case filename != "":
			return filename + ": "
		}
		return ""
	}
	if inv.Version != "v1" {
		line := 0
		if pos != nil {
			line = pos.version
		}
		return fmt.Errorf("%sversion %q is not supported; use version: v1", at(line), inv.Version)
	}
	var sitePos, kioskPos []map[string]int
	if pos != nil {
		sitePos, kioskPos = pos.sites, pos.kiosks
	}
	sites := map[string]bool{}
	for i := range inv.Sites {
		s := &inv.Sites[i]
		fail := func(field, format string, args ...any) error {
			return fmt.Errorf("%ssite %q: %s", at(pos.line(sitePos, i, field)), s.ID, fmt.Sprintf(format, args...))
		}
		if !idRe.MatchString(s.ID) {
			return fail("id", "id must be 1-64 letters, digits, '.', '_' or '-'")
		}
		if sites[s.ID] {
			return fail("id", "listed twice")
		}
		sites[s.ID] = true
		if s.Timezone != "" {
			if _, err := time.LoadLocation(s.Timezone); err != nil {
				return fail("timezone", "unknown timezone %q (want e.g. Asia/Shanghai)", s.Timezone)
			}
		}
		for j, h := range s.OpeningHours {
			if _, err := parseHours(h); err != nil {
				return fail("opening_hours", "opening_hours[%d]: %s", j, err)
			}
		}
	}
	kiosks := map[string]bool{}
	for i := range inv.Kiosks {
		k := &inv.Kiosks[i]
		fail := func(field, format string, args ...any) error {
			return fmt.Errorf("%skiosk %q: %s", at(pos.line(kioskPos, i, field)), k.ID, fmt.Sprintf(format, args...))
		}
		switch {
		case !idRe.MatchString(k.ID):
			return fail("id", "id must be 1-64 letters, digits, '.', '_' or '-'")
		case kiosks[k.ID]:
			return fail("id", "listed twice")
		case k.Site == "":
			return fail("", "site is missing")
		case !sites[k.Site]:
			return fail("site", "site %q is not listed under sites", k.Site)
		case k.District == "":
			return fail("", "district is missing")
		case k.Provider == "":
			return fail("", "provider is missing (the maintenance provider)")
		case k.Lat < -90 || k.Lat > 90:
			return fail("lat", "lat %g is outside -90..90", k.Lat)
		case k.Lon < -180 || k.Lon > 180:
			return fail("lon", "lon %g is outside -180..180", k.Lon)
		case k.DistanceKm < 0:
			return fail("distance_km", "distance_km %g is negative", k.DistanceKm)
		case k.TokenSHA256 != "" && !isLowerHex64(k.TokenSHA256):
			return fail("token_sha256", "token_sha256 must be 64 lowercase hex characters (the SHA-256 of the token; `kioskmon kiosks token` writes it)")
		}
		kiosks[k.ID] = true
	}
	return nil
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Save writes the inventory atomically: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced. A reader
// (the server's reload) sees the old file or the new one, never half of one.
func (inv *Inventory) Save(path string) error {
	data, err := inv.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("save inventory: %w", err)
	}
	return nil
}

// marshal validates and encodes the inventory as Save writes it.
func (inv *Inventory) marshal() ([]byte, error) {
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(inv); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	return buf.Bytes(), nil
}

// HashToken returns the lowercase hex SHA-256 of a push token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a new random push token (256 bits, URL-safe base64).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
