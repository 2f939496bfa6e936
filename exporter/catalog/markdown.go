package catalog

import (
	"bytes"
	"fmt"
	"strings"
)

var groupTitles = map[Group]string{
	Consumables: "Consumables and printers",
	Peripherals: "Peripherals",
	Application: "Kiosk application",
	Network:     "Network",
	Power:       "Power (UPS)",
	Host:        "Host",
	Service:     "Service mode",
	Exporter:    "The exporter itself",
}

// Markdown renders the catalogue as METRICS.md.
func Markdown() []byte {
	var b bytes.Buffer
	b.WriteString("# Kiosk exporter metrics\n\n")
	b.WriteString("Generated from `exporter/catalog` by `go generate ./exporter/catalog`; do not edit.\n\n")
	b.WriteString("Every series the kiosk exporter reports. kioskmon adds `kiosk`, `site`, `district` and `provider`\n")
	b.WriteString("from its inventory when the exporter pushes, so they are not listed. A metric with a `state`\n")
	b.WriteString("label is an enumeration: one series per state, 1 for the current one, 0 for the others.\n")
	b.WriteString("Faults are the ids of package `faults`, shared with the grading rules and the fleet simulator.\n")
	for _, g := range Groups {
		fmt.Fprintf(&b, "\n## %s\n\n", groupTitles[g])
		b.WriteString("| metric | type | unit | labels | meaning | faults |\n|---|---|---|---|---|---|\n")
		for _, m := range Metrics {
			if m.Group != g {
				continue
			}
			labels := make([]string, len(m.Labels))
			for i, l := range m.Labels {
				labels[i] = "`" + l + "`"
				if l == "state" {
					labels[i] += " (" + strings.Join(m.States, ", ") + ")"
				}
			}
			help := m.Help
			if m.Type == Histogram {
				help += fmt.Sprintf(" Buckets: %s s.", strings.Trim(fmt.Sprint(m.Buckets), "[]"))
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", m.Name, m.Type, m.Unit, strings.Join(labels, ", "),
				strings.ReplaceAll(help, "|", "\\|"), strings.Join(m.Faults, ", "))
		}
	}
	return b.Bytes()
}
