package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

const kiosksUsage = `usage:
  kioskmon kiosks add   --inventory FILE --id ID --site SITE --district D --provider P [--name N --lat X --lon Y --distance-km K]
  kioskmon kiosks token --inventory FILE --id ID      (prints the new push token as the last line)
  kioskmon kiosks list  --inventory FILE [--json]
`

// runKiosks manages the kiosk inventory file.
func runKiosks(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, kiosksUsage)
		return errors.New("kiosks needs a verb: add, token or list")
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("kioskmon kiosks "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("inventory", "", "kiosk inventory file (YAML)")
	switch verb {
	case "add":
		var k inventory.Kiosk
		fs.StringVar(&k.ID, "id", "", "kiosk id, e.g. gl-001 (letters, digits, '.', '_', '-')")
		fs.StringVar(&k.Site, "site", "", "site id; the site is added to the inventory if new")
		fs.StringVar(&k.District, "district", "", "district of the kiosk")
		fs.StringVar(&k.Provider, "provider", "", "maintenance provider under contract for this kiosk")
		fs.StringVar(&k.Name, "name", "", "human-readable name")
		fs.Float64Var(&k.Lat, "lat", 0, "latitude in degrees")
		fs.Float64Var(&k.Lon, "lon", 0, "longitude in degrees")
		fs.Float64Var(&k.DistanceKm, "distance-km", 0, "distance to the provider's service point in km")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if err := required(*path, "--inventory", "the inventory file, e.g. --inventory inventory.yml"); err != nil {
			return err
		}
		for _, r := range []struct{ value, flag, example string }{
			{k.ID, "--id", "the kiosk id, e.g. --id gl-001"},
			{k.Site, "--site", "the kiosk's site, e.g. --site gulou-hall"},
			{k.District, "--district", "the kiosk's district, e.g. --district gulou"},
			{k.Provider, "--provider", "the maintenance provider, e.g. --provider acme-om"},
		} {
			if err := required(r.value, r.flag, r.example); err != nil {
				return err
			}
		}
		return addKiosk(*path, k, stdout)
	case "token":
		id := fs.String("id", "", "kiosk id")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if err := required(*path, "--inventory", "the inventory file, e.g. --inventory inventory.yml"); err != nil {
			return err
		}
		if err := required(*id, "--id", "the kiosk id, e.g. --id gl-001"); err != nil {
			return err
		}
		return newKioskToken(*path, *id, stdout)
	case "list":
		asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if err := required(*path, "--inventory", "the inventory file, e.g. --inventory inventory.yml"); err != nil {
			return err
		}
		return listKiosks(*path, *asJSON, stdout)
	default:
		fmt.Fprint(stderr, kiosksUsage)
		return fmt.Errorf("unknown kiosks verb %q: use add, token or list", verb)
	}
}

func required(value, flagName, what string) error {
	if value == "" {
		return fmt.Errorf("missing %s: give %s", flagName, what)
	}
	return nil
}

func addKiosk(path string, k inventory.Kiosk, stdout io.Writer) error {
	inv, err := inventory.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		inv, err = &inventory.Inventory{Version: "v1"}, nil
	}
	if err != nil {
		return err
	}
	for _, existing := range inv.Kiosks {
		if existing.ID == k.ID {
			return fmt.Errorf("kiosk %q is already in %s", k.ID, path)
		}
	}
	siteKnown := false
	for _, s := range inv.Sites {
		siteKnown = siteKnown || s.ID == k.Site
	}
	if !siteKnown {
		// A new site is open 24x7 until its opening hours are written in.
		inv.Sites = append(inv.Sites, inventory.Site{ID: k.Site, District: k.District})
	}
	inv.Kiosks = append(inv.Kiosks, k)
	if err := inv.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added kiosk %s (site %s, district %s, provider %s) to %s; make its push token with: kioskmon kiosks token --inventory %s --id %s\n",
		k.ID, k.Site, k.District, k.Provider, path, path, k.ID)
	return nil
}

func newKioskToken(path, id string, stdout io.Writer) error {
	inv, err := inventory.Load(path)
	if err != nil {
		return err
	}
	var k *inventory.Kiosk
	for i := range inv.Kiosks {
		if inv.Kiosks[i].ID == id {
			k = &inv.Kiosks[i]
		}
	}
	if k == nil {
		return fmt.Errorf("kiosk %q is not in %s; add it first with `kioskmon kiosks add`", id, path)
	}
	token, err := inventory.NewToken()
	if err != nil {
		return err
	}
	k.TokenSHA256 = inventory.HashToken(token)
	if err := inv.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new push token for kiosk %s (only its hash is kept, store the token now; the old token no longer works):\n%s\n", id, token)
	return nil
}

func listKiosks(path string, asJSON bool, stdout io.Writer) error {
	inv, err := inventory.Load(path)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if inv.Kiosks == nil {
			inv.Kiosks = []inventory.Kiosk{}
		}
		return enc.Encode(inv.Kiosks)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSITE\tDISTRICT\tPROVIDER\tTOKEN\tNAME")
	for _, k := range inv.Kiosks {
		token := "no"
		if k.TokenSHA256 != "" {
			token = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Site, k.District, k.Provider, token, k.Name)
	}
	return tw.Flush()
}
