package access

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openTemp(t *testing.T) (*Store, string, string) {
	t.Helper()
	dir := t.TempDir()
	s, path, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir, strings.TrimSpace(string(data))
}

func TestFirstStartWritesAnAdminTokenOnlyOnce(t *testing.T) {
	s, dir, admin := openTemp(t)
	st, err := os.Stat(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode %v, want 0600", st.Mode().Perm())
	}
	if id, ok := s.Lookup(admin); !ok || id.Role != Admin || id.Name != "admin" {
		t.Fatalf("admin token looks up as %+v %v", id, ok)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, TokensFile))
	if strings.Contains(string(raw), admin) {
		t.Fatal("the tokens file holds a secret in clear")
	}
	// A restart keeps the tokens and does not issue another admin token.
	s2, path, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != "" {
		t.Errorf("second start wrote an admin token again to %s", path)
	}
	if _, ok := s2.Lookup(admin); !ok {
		t.Fatal("admin token lost on restart")
	}
	if _, ok := s2.Lookup(admin + "x"); ok {
		t.Fatal("a wrong token was accepted")
	}
}

func TestCorruptTokensFileIsAnErrorNotAReset(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TokensFile), []byte("[{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir); err == nil || !strings.Contains(err.Error(), TokensFile) {
		t.Fatalf("Open of a corrupt tokens file: %v", err)
	}
}

func TestRolesAndRevocation(t *testing.T) {
	s, _, admin := openTemp(t)
	eng, err := s.Add("li.wei", Engineer, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("li.wei", Viewer, "admin"); err == nil {
		t.Fatal("a second live token with the same name was issued")
	}
	if _, err := s.Add("no spaces", Viewer, "admin"); err == nil {
		t.Fatal("a name with a space was accepted")
	}
	var denied []string
	h := s.Require(Manager, func(r string) { denied = append(denied, r) }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := FromContext(r.Context())
		w.Write([]byte(id.Name))
	}))
	call := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := call(""); rec.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d", rec.Code)
	}
	if rec := call(eng); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "engineer") {
		t.Errorf("engineer on a manager route: %d %s", rec.Code, rec.Body)
	}
	if rec := call(admin); rec.Code != http.StatusOK || rec.Body.String() != "admin" {
		t.Errorf("admin: %d %s", rec.Code, rec.Body)
	}
	if strings.Join(denied, ",") != "unauthenticated,forbidden" {
		t.Errorf("denials counted %v", denied)
	}
	if err := s.Revoke("li.wei", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup(eng); ok {
		t.Fatal("a revoked token still works")
	}
	// The name can be reused after revocation, and the history is kept.
	if _, err := s.Add("li.wei", Engineer, "admin"); err != nil {
		t.Fatal(err)
	}
	if n := len(s.List()); n != 3 {
		t.Errorf("%d tokens listed, want 3 (admin, revoked li.wei, new li.wei)", n)
	}
}

func TestTokenAPI(t *testing.T) {
	s, _, admin := openTemp(t)
	mux := http.NewServeMux()
	s.Register(mux, nil)
	do := func(method, path, body, token string) (int, map[string]any) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.SetBasicAuth("x", token) // Basic auth's password works too
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	code, out := do("POST", "/api/v1/tokens", `{"name":"noc","role":"viewer"}`, admin)
	if code != http.StatusCreated {
		t.Fatalf("issue: %d %v", code, out)
	}
	secret := out["data"].(map[string]any)["token"].(string)
	if id, ok := s.Lookup(secret); !ok || id.Role != Viewer {
		t.Fatalf("issued token looks up as %+v", id)
	}
	if code, _ := do("GET", "/api/v1/tokens", "", secret); code != http.StatusForbidden {
		t.Errorf("viewer listing tokens: %d", code)
	}
	if code, out := do("POST", "/api/v1/tokens", `{"name":"x","role":"root"}`, admin); code != http.StatusBadRequest {
		t.Errorf("bad role: %d %v", code, out)
	}
	if code, _ := do("DELETE", "/api/v1/tokens/noc", "", admin); code != http.StatusOK {
		t.Errorf("revoke: %d", code)
	}
	if code, _ := do("DELETE", "/api/v1/tokens/noc", "", admin); code != http.StatusNotFound {
		t.Errorf("revoke twice: %d", code)
	}
	for _, tok := range s.List() {
		if tok.Name == "noc" && tok.RevokedBy != "admin" {
			t.Errorf("revocation not audited: %+v", tok)
		}
	}
}
