// Package access is who may do what to incidents and reports: bearer tokens,
// each with a name and a role (viewer, engineer, manager, admin). Tokens are
// kept hashed in a file in the data directory; the first start creates an
// admin token and writes it, readable by its owner only, beside that file.
// The token's name is the actor the ledger records for every change, so the
// audit trail says who did what, and when.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kioskmon/kioskmon/internal/atomicfile"
)

// Role is what a token may do; each role may do all the roles before it may.
type Role int

// Roles, least to most.
const (
	Viewer   Role = iota + 1 // reads incidents and reports
	Engineer                 // records lifecycle events, reports faults
	Manager                  // approves exemptions (force majeure), changes severities
	Admin                    // manages tokens
)

var roleNames = map[Role]string{Viewer: "viewer", Engineer: "engineer", Manager: "manager", Admin: "admin"}

// RoleNames lists the roles, least to most.
var RoleNames = []string{"viewer", "engineer", "manager", "admin"}

func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole parses a role's name.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if name == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("role %q is not one of %s", s, strings.Join(RoleNames, ", "))
}

// MarshalJSON writes the role's name.
func (r Role) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads a role's name.
func (r *Role) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseRole(s)
	*r = v
	return err
}

// Token is one issued token, as the tokens file keeps it.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	SHA256    string    `json:"sha256"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	RevokedBy string    `json:"revoked_by,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Identity is who presented a valid token.
type Identity struct {
	Name string
	Role Role
}

// Store is the set of tokens, backed by a file.
type Store struct {
	path string
	now  func() time.Time

	mu     sync.RWMutex
	tokens []Token
	byHash map[string]int
}

// File names in the data directory.
const (
	TokensFile     = "tokens.json"
	AdminTokenFile = "admin-token"
)

// Open loads dir/tokens.json. When it does not exist, Open creates it with
// one admin token, written in clear to dir/admin-token (mode 0600);
// adminTokenPath says where, so the caller can log it. An existing file
// that does not parse is an error, never silently replaced.
func Open(dir string) (s *Store, adminTokenPath string, err error) {
	s = &Store{path: filepath.Join(dir, TokensFile), now: time.Now}
	data, err := os.ReadFile(s.path)
	switch {
	case err == nil:
		var tokens []Token
		if err := json.Unmarshal(data, &tokens); err != nil {
			return nil, "", fmt.Errorf("tokens file %s: %w; fix it or move it away to start with a new admin token", s.path, err)
		}
		s.index(tokens)
		return s, "", nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("tokens file: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("tokens directory: %w", err)
	}
	s.index(nil)
	secret, err := s.Add("admin", Admin, "kioskmon")
	if err != nil {
		return nil, "", err
	}
	adminTokenPath = filepath.Join(dir, AdminTokenFile)
	if err := atomicfile.Write(adminTokenPath, []byte(secret+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("write the admin token: %w", err)
	}
	return s, adminTokenPath, nil
}

func (s *Store) index(tokens []Token) {
	s.tokens = tokens
	s.byHash = make(map[string]int, len(tokens))
	for i, t := range tokens {
		if t.RevokedAt.IsZero() {
			s.byHash[t.SHA256] = i
		}
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Add issues a token named name with role, recorded as created by by, and
// returns the secret: it is shown once and never stored.
func (s *Store) Add(name string, role Role, by string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("token name %q: use 1 to 64 letters, digits, '.', '_', '@' or '-' (it is recorded as the actor of every change)", name)
	}
	if _, ok := roleNames[role]; !ok {
		return "", fmt.Errorf("token %q: %s is not a role", name, role)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	secret := "kmt_" + hex.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.Name == name && t.RevokedAt.IsZero() {
			return "", fmt.Errorf("a token named %q exists: revoke it first, or choose another name", name)
		}
	}
	tokens := append(slices.Clip(s.tokens), Token{Name: name, Role: role, SHA256: hex.EncodeToString(sum[:]),
		CreatedBy: by, CreatedAt: s.now().UTC().Truncate(time.Second)})
	if err := s.save(tokens); err != nil {
		return "", err
	}
	s.index(tokens)
	return secret, nil
}

// Revoke revokes the live token named name, recorded as revoked by by.
func (s *Store) Revoke(name, by string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens := slices.Clone(s.tokens)
	for i, t := range tokens {
		if t.Name == name && t.RevokedAt.IsZero() {
			tokens[i].RevokedBy, tokens[i].RevokedAt = by, s.now().UTC().Truncate(time.Second)
			if err := s.save(tokens); err != nil {
				return err
			}
			s.index(tokens)
			return nil
		}
	}
	return fmt.Errorf("%w: no live token named %q", ErrNoToken, name)
}

// ErrNoToken is returned for a token that does not exist.
var ErrNoToken = errors.New("no such token")

// List returns every token issued, revoked ones included.
func (s *Store) List() []Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.tokens)
}

func (s *Store) save(tokens []Token) error {
	data, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save tokens: %w", err)
	}
	return nil
}

// Lookup returns the identity a secret belongs to.
func (s *Store) Lookup(secret string) (Identity, bool) {
	if secret == "" {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	key := hex.EncodeToString(sum[:])
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.byHash[key]
	if !ok || subtle.ConstantTimeCompare([]byte(s.tokens[i].SHA256), []byte(key)) != 1 {
		return Identity{}, false
	}
	return Identity{Name: s.tokens[i].Name, Role: s.tokens[i].Role}, true
}

type ctxKey struct{}

// FromContext returns the identity Require put in the request's context.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// WithIdentity returns ctx carrying id, for tests and in-process callers.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// BearerToken returns the request's token: an Authorization Bearer token
// or, for tools that only speak Basic auth (Alertmanager, curl -u), the
// password.
func BearerToken(r *http.Request) string {
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(cred)
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

// Require serves next only to a token of at least role: 401 without a
// valid token, 403 with one of a lesser role. denied, if not nil, counts
// refusals by reason.
func (s *Store) Require(role Role, denied func(reason string), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.Lookup(BearerToken(r))
		if !ok {
			if denied != nil {
				denied("unauthenticated")
			}
			// Basic, so that a browser asks: a manager opens the report
			// with any user name and the token as the password.
			w.Header().Set("WWW-Authenticate", `Basic realm="kioskmon"`)
			http.Error(w, "kioskmon: this needs a token (Authorization: Bearer TOKEN, or as the Basic auth password); the first admin token is in the server's data directory, file admin-token", http.StatusUnauthorized)
			return
		}
		if id.Role < role {
			if denied != nil {
				denied("forbidden")
			}
			http.Error(w, fmt.Sprintf("kioskmon: token %q has role %s; this needs %s or above", id.Name, id.Role, role), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// Register serves token management to admins: GET /api/v1/tokens lists,
// POST /api/v1/tokens {"name","role"} issues (the secret is in the answer,
// once), DELETE /api/v1/tokens/{name} revokes.
func (s *Store) Register(mux *http.ServeMux, denied func(reason string)) {
	mux.Handle("GET /api/v1/tokens", s.Require(Admin, denied, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"tokens": s.List()})
	})))
	mux.Handle("POST /api/v1/tokens", s.Require(Admin, denied, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
			Role string `json:"role"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf("token request: %w; send {\"name\": NAME, \"role\": ROLE}", err))
			return
		}
		role, err := ParseRole(req.Role)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		by, _ := FromContext(r.Context())
		secret, err := s.Add(req.Name, role, by.Name)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "role": role, "token": secret})
	})))
	mux.Handle("DELETE /api/v1/tokens/{name}", s.Require(Admin, denied, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		by, _ := FromContext(r.Context())
		if err := s.Revoke(r.PathValue("name"), by.Name); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, ErrNoToken) {
				status = http.StatusNotFound
			}
			writeJSONError(w, status, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"revoked": r.PathValue("name")})
	})))
}

func writeJSON(w http.ResponseWriter, status int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func writeJSONError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": "error", "error": err.Error()})
}
