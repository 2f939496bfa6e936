package inventory

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Index looks kiosks up by id and by token. It is built once per inventory
// version and read-only afterwards, so it is safe for concurrent use.
type Index struct {
	inv     *Inventory
	kiosks  map[string]*Kiosk
	sites   map[string]*Site
	byToken map[[sha256.Size]byte]*Kiosk
	hashes  map[string][sha256.Size]byte
	ordered []*Kiosk
}

// NewIndex indexes inv. The Index refers to inv's kiosks and sites.
func NewIndex(inv *Inventory) *Index {
	ix := &Index{
		inv:     inv,
		kiosks:  make(map[string]*Kiosk, len(inv.Kiosks)),
		sites:   make(map[string]*Site, len(inv.Sites)),
		byToken: make(map[[sha256.Size]byte]*Kiosk, len(inv.Kiosks)),
		hashes:  make(map[string][sha256.Size]byte, len(inv.Kiosks)),
	}
	for i := range inv.Sites {
		ix.sites[inv.Sites[i].ID] = &inv.Sites[i]
	}
	for i := range inv.Kiosks {
		k := &inv.Kiosks[i]
		ix.kiosks[k.ID] = k
		ix.ordered = append(ix.ordered, k)
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(k.TokenSHA256)); err == nil && n == sha256.Size {
			ix.byToken[h] = k
			ix.hashes[k.ID] = h
		}
	}
	return ix
}

// Inventory returns the inventory indexed. Callers must not modify it.
func (ix *Index) Inventory() *Inventory { return ix.inv }

// Kiosk returns the kiosk with this id.
func (ix *Index) Kiosk(id string) (*Kiosk, bool) {
	k, ok := ix.kiosks[id]
	return k, ok
}

// Site returns the site with this id.
func (ix *Index) Site(id string) (*Site, bool) {
	s, ok := ix.sites[id]
	return s, ok
}

// Kiosks returns every kiosk, in the inventory's order. Callers must not
// modify them.
func (ix *Index) Kiosks() []*Kiosk { return ix.ordered }

// Len returns the number of kiosks.
func (ix *Index) Len() int { return len(ix.kiosks) }

// AuthenticateBearer returns the kiosk whose token this is.
func (ix *Index) AuthenticateBearer(token string) (*Kiosk, bool) {
	if token == "" {
		return nil, false
	}
	// Lookup by the token's hash: the hash is not secret, so a map lookup
	// leaks nothing a constant-time comparison would protect.
	k, ok := ix.byToken[sha256.Sum256([]byte(token))]
	return k, ok
}

// AuthenticateBasic returns the kiosk with this id if token is its token.
func (ix *Index) AuthenticateBasic(id, token string) (*Kiosk, bool) {
	want, ok := ix.hashes[id]
	if !ok || token == "" {
		return nil, false
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return nil, false
	}
	return ix.kiosks[id], true
}
