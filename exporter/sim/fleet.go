package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/kioskmon/kioskmon/ingest/inventory"
	"github.com/kioskmon/kioskmon/internal/atomicfile"
)

// Member is a simulated kiosk as the inventory knows it, with its token.
type Member struct {
	Kiosk inventory.Kiosk
	Site  inventory.Site
	Token string
}

var (
	districts = []string{"gulou", "taijiang", "cangshan", "jinan", "mawei", "changle", "minhou", "lianjiang"}
	providers = []string{"acme-om", "minjiang-service", "haixi-tech"}
)

// kiosksPerSite: kiosk i stands at site i/kiosksPerSite, so a kiosk's site
// does not depend on the fleet size and a larger run extends a smaller one.
const kiosksPerSite = 5

// KioskID returns the id of the simulated kiosk i (0-based).
func KioskID(i int) string {
	return fmt.Sprintf("%s-%05d", districts[siteDistrict(i/kiosksPerSite)][:2], i+1)
}

func siteDistrict(s int) int { return s % len(districts) }

// siteFor describes site s. Every fourth site is a police station's
// self-service room, open around the clock; the others are service halls
// with office hours, some opening on Saturday mornings.
func siteFor(s int) inventory.Site {
	d := districts[siteDistrict(s)]
	site := inventory.Site{District: d, Timezone: inventory.DefaultTimezone}
	switch {
	case s%4 == 3:
		site.ID = fmt.Sprintf("%s-police-%03d", d, s)
		site.Name = fmt.Sprintf("%s police station %d, self-service room", strings.ToUpper(d[:1])+d[1:], s)
	default:
		site.ID = fmt.Sprintf("%s-hall-%03d", d, s)
		site.Name = fmt.Sprintf("%s service hall %d", strings.ToUpper(d[:1])+d[1:], s)
		site.OpeningHours = []inventory.OpeningHours{{Days: "mon-fri", Open: "08:30", Close: "17:30"}}
		if s%2 == 0 {
			site.OpeningHours = append(site.OpeningHours, inventory.OpeningHours{Days: "sat", Open: "09:00", Close: "12:00"})
		}
	}
	return site
}

// kioskFor describes kiosk i, without a token.
func kioskFor(i int) inventory.Kiosk {
	s := i / kiosksPerSite
	site := siteFor(s)
	// Coordinates and distance follow from the id, so reruns agree.
	rng := rand.New(rand.NewPCG(uint64(i), 0x6b696f736b))
	return inventory.Kiosk{
		ID: KioskID(i), Name: fmt.Sprintf("Kiosk %d at %s", i%kiosksPerSite+1, site.Name),
		Site: site.ID, District: site.District, Provider: providers[s%len(providers)],
		Lat: math.Round((25.9+rng.Float64()*0.4)*1e5) / 1e5, Lon: math.Round((119.1+rng.Float64()*0.5)*1e5) / 1e5,
		DistanceKm: math.Round(rng.Float64()*1500) / 10,
	}
}

// TokensPath is where the simulator keeps the tokens of the kiosks it added
// to the inventory at inventoryPath: beside it, mode 0600.
func TokensPath(inventoryPath string) string {
	base := strings.TrimSuffix(filepath.Base(inventoryPath), filepath.Ext(inventoryPath))
	return filepath.Join(filepath.Dir(inventoryPath), base+".sim-tokens.json")
}

// EnsureFleet makes the inventory at inventoryPath hold the simulated kiosks
// 0..n-1 with tokens the simulator knows, creating the file if needed. Kiosks
// and sites it lacks are added; a simulated kiosk whose token is not in the
// tokens file gets a new one. Other kiosks and sites are left as they are.
// The inventory is saved atomically (kioskmon reloads it on change); the
// tokens file is written first, so a token is never in the inventory
// without the simulator knowing it.
func EnsureFleet(inventoryPath, tokensPath string, n int) ([]Member, int, error) {
	inv := &inventory.Inventory{Version: "v1"}
	switch loaded, err := inventory.Load(inventoryPath); {
	case err == nil:
		inv = loaded
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, 0, err
	}
	tokens := map[string]string{}
	if data, err := os.ReadFile(tokensPath); err == nil {
		if err := json.Unmarshal(data, &tokens); err != nil {
			return nil, 0, fmt.Errorf("read simulator tokens %s: %w (delete it to issue new tokens)", tokensPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("read simulator tokens: %w", err)
	}
	sites := map[string]int{}
	for i, s := range inv.Sites {
		sites[s.ID] = i
	}
	kiosks := map[string]int{}
	for i, k := range inv.Kiosks {
		kiosks[k.ID] = i
	}
	members := make([]Member, n)
	changed := 0
	for i := range n {
		k := kioskFor(i)
		site := siteFor(i / kiosksPerSite)
		if j, ok := sites[site.ID]; ok {
			site = inv.Sites[j]
		} else {
			sites[site.ID] = len(inv.Sites)
			inv.Sites = append(inv.Sites, site)
		}
		token, known := tokens[k.ID]
		j, inInventory := kiosks[k.ID]
		if inInventory {
			existing := inv.Kiosks[j]
			if known && existing.TokenSHA256 == inventory.HashToken(token) {
				members[i] = Member{Kiosk: existing, Site: site, Token: token}
				continue
			}
		}
		token, err := inventory.NewToken()
		if err != nil {
			return nil, 0, err
		}
		tokens[k.ID] = token
		k.TokenSHA256 = inventory.HashToken(token)
		if inInventory {
			// Keep what an operator edited; only the token is the simulator's.
			existing := inv.Kiosks[j]
			existing.TokenSHA256 = k.TokenSHA256
			inv.Kiosks[j], k = existing, existing
		} else {
			kiosks[k.ID] = len(inv.Kiosks)
			inv.Kiosks = append(inv.Kiosks, k)
		}
		members[i] = Member{Kiosk: k, Site: site, Token: token}
		changed++
	}
	if changed == 0 {
		return members, 0, nil
	}
	data, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return nil, 0, err
	}
	if err := atomicfile.Write(tokensPath, data, 0o600); err != nil {
		return nil, 0, fmt.Errorf("write simulator tokens: %w", err)
	}
	if err := inv.Save(inventoryPath); err != nil {
		return nil, 0, err
	}
	return members, changed, nil
}
