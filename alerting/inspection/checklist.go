// Package inspection is the remote inspection (巡检) of Fujian 2022 §8.2:
// every kiosk is inspected at least every two weeks against the standard's
// checklist, from its metrics. Each inspection is a durable record, kept for
// the SLA report's inspection coverage; an item that fails on something no
// alert already covers is written to the storage as a series the rulebook's
// inspection faults fire on, so the finding becomes planned work.
package inspection

import "github.com/kioskmon/kioskmon/alerting/rulebook"

// Item is one line of the checklist.
type Item struct {
	ID             string
	NameZH, NameEN string
	// Kinds are the peripheral kinds (kiosk_peripheral_state{kind}) the
	// item looks at; a kiosk with none of them has nothing to inspect there.
	Kinds []string
	// Always: every reporting kiosk has this item (its pages, its network).
	Always bool
	// Printing: the item applies to a kiosk that has a printer.
	Printing bool
}

// Checklist is Fujian 2022 §8.2's checklist, in the standard's order. Its ids
// are rulebook.InspectionItems.
var Checklist = []Item{
	{ID: "signage", NameZH: "标识和指示灯", NameEN: "Signage and indicator lights", Kinds: []string{"lighting"}},
	{ID: "display", NameZH: "显示屏和触摸屏", NameEN: "Display and touch screen", Kinds: []string{"display", "touch_screen"}},
	{ID: "scanner", NameZH: "扫描仪", NameEN: "Scanners", Kinds: []string{"document_scanner", "code_scanner"}},
	{ID: "camera", NameZH: "摄像头", NameEN: "Camera", Kinds: []string{"camera"}},
	{ID: "fingerprint_reader", NameZH: "指纹仪", NameEN: "Fingerprint reader", Kinds: []string{"fingerprint_reader"}},
	{ID: "card_reader", NameZH: "身份证阅读器", NameEN: "ID card reader", Kinds: []string{"id_card_reader"}},
	{ID: "printer", NameZH: "打印机", NameEN: "Printers", Kinds: []string{"a4_printer", "receipt_printer"}, Printing: true},
	{ID: "consumables", NameZH: "耗材未用尽", NameEN: "Consumables not empty", Printing: true},
	{ID: "client_pages", NameZH: "客户端页面（无卡顿、错误、缓慢）", NameEN: "Client pages (not stuck, wrong or slow)", Always: true},
	{ID: "network", NameZH: "网络通信", NameEN: "Network communication", Always: true},
}

// itemOfKind maps a peripheral kind to its checklist item.
var itemOfKind = func() map[string]string {
	m := map[string]string{}
	for _, it := range Checklist {
		for _, k := range it.Kinds {
			m[k] = it.ID
		}
	}
	return m
}()

// Results of an item and of an inspection.
const (
	Pass = "pass"
	Fail = "fail"
	// NotApplicable: the kiosk has nothing this item inspects (no camera).
	NotApplicable = "not_applicable"
	// Unreachable: the kiosk sent nothing recently, so it could not be
	// inspected remotely; it is tried again and counts as not inspected.
	Unreachable = "unreachable"
)

// symptomFaults are the rulebook's faults whose symptom fails an item: all
// with an inspection item, except forecasts, which are planning and not a
// failure (paper that runs out tomorrow is not empty today).
func symptomFaults(rb *rulebook.Rulebook) []rulebook.Fault {
	var out []rulebook.Fault
	for _, f := range rb.Faults {
		if f.Inspection != "" && f.Category != "consumables" {
			out = append(out, f)
		}
	}
	return out
}
