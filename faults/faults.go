// Package faults is the one list of fault ids: what the fleet simulator
// injects, what the grading rules report in their "fault" label, and what
// incidents are opened for. The entries follow the fault catalogue of Fujian
// 2022 (Annex A, table A.1), the examples of DB12/T 1060—2021 table 2 and the
// page symptoms of DB4403/T 503 part 6, plus the conditions a monitoring
// system adds (offline, clock wrong, power cut, consumables running out).
package faults

import "sort"

// Category groups faults as the standards do.
type Category string

// Categories.
const (
	Hardware    Category = "hardware"
	Software    Category = "software"
	Network     Category = "network"
	Power       Category = "power"
	Consumables Category = "consumables"
)

// Class is the Fujian 2022 severity class.
type Class string

// Fujian 2022 classes.
const (
	General Class = "general" // 一般
	Severe  Class = "severe"  // 严重
)

// Fault is one entry of the catalogue.
type Fault struct {
	ID       string
	Category Category
	NameZH   string
	NameEN   string
	// Source is the standard (and table) the fault comes from.
	Source string
	// Class is the Fujian 2022 class; for faults outside its table, the class
	// the same reasoning gives (does the kiosk stop serving citizens?).
	Class Class
	// Injectable faults are ones the fleet simulator can cause; the others
	// (forecasts) follow from the simulated behaviour.
	Injectable bool
}

// Fault ids.
const (
	PaperOut                = "hw.paper_out"
	TonerOut                = "hw.toner_out"
	UPSRuntimeWeak          = "hw.ups_runtime_weak"
	BlueWhiteScreen         = "hw.blue_white_screen"
	HostSaturated           = "hw.host_saturated"
	PeripheralNotResponding = "hw.peripheral_not_responding"
	PaperJam                = "hw.paper_jam"
	PrinterFault            = "hw.printer_fault"
	ScreenBlurred           = "hw.screen_blurred"
	IDReaderFault           = "hw.id_reader_fault"
	LightsDim               = "hw.lights_dim"
	WrongOrNoData           = "sw.wrong_or_no_data"
	PageSlow                = "sw.page_slow"
	ServiceUnresponsive     = "sw.service_unresponsive"
	ClientLag               = "sw.client_lag"
	PageTampered            = "sw.page_tampered"
	PageUnreachable         = "sw.page_unreachable"
	HighLatency             = "net.high_latency"
	PacketLoss              = "net.packet_loss"
	LinkDown                = "net.link_down"
	IPChanged               = "net.ip_changed"
	MainsLost               = "power.mains_lost"
	KioskOffline            = "kiosk.offline"
	ClockWrong              = "host.clock_wrong"
	PaperRunningOut         = "consumables.paper_forecast"
	TonerRunningOut         = "consumables.toner_forecast"
	sourceFujian            = "Fujian 2022 table A.1"
	sourceDB12              = "DB12/T 1060—2021 table 2"
	sourceShenzhen          = "DB4403/T 503.6"
	sourceMonitoring        = "kioskmon"
)

// All is the catalogue, in the order of its sources' tables.
var All = []Fault{
	{PaperOut, Hardware, "机器缺纸", "Out of paper", sourceFujian, General, true},
	{UPSRuntimeWeak, Hardware, "供电UPS续航能力弱", "UPS runtime weak", sourceFujian, General, true},
	{BlueWhiteScreen, Hardware, "蓝屏、白屏", "Blue or white screen", sourceFujian, Severe, true},
	{HostSaturated, Hardware, "主机资源占用较大、处理缓慢", "Host resources saturated, slow", sourceFujian, Severe, true},
	{PeripheralNotResponding, Hardware, "硬件外设驱动无响应", "Peripheral driver not responding", sourceFujian, Severe, true},
	{PaperJam, Hardware, "机器卡纸", "Paper jam", sourceFujian, Severe, true},
	{WrongOrNoData, Software, "客户端无返回或信息返回错误", "Client returns nothing or wrong data", sourceFujian, General, true},
	{PageSlow, Software, "客户端跳转错误或跳转迟缓", "Client page redirect wrong or slow", sourceFujian, General, true},
	{ServiceUnresponsive, Software, "服务无响应和闪退", "Service unresponsive or app crashes", sourceFujian, Severe, true},
	{ClientLag, Software, "客户端卡顿", "Client lag", sourceFujian, Severe, true},
	{PageTampered, Software, "页面被篡改", "Page tampered", sourceFujian, Severe, true},
	{HighLatency, Network, "网络响应延迟较大", "High network latency", sourceFujian, General, true},
	{PacketLoss, Network, "网络丢包率较大", "High packet loss", sourceFujian, General, true},
	{LinkDown, Network, "网络通信链路不通", "Network link down", sourceFujian, Severe, true},
	{IPChanged, Network, "网络IP变动或无法获取", "IP changed or not obtainable", sourceFujian, Severe, true},
	{PrinterFault, Hardware, "打印机不能工作", "Printer not working", sourceDB12, Severe, true},
	{ScreenBlurred, Hardware, "屏幕模糊", "Screen blurred", sourceDB12, General, true},
	{IDReaderFault, Hardware, "身份证阅读器不能读取", "ID card reader not reading", sourceDB12, Severe, true},
	{LightsDim, Hardware, "灯光昏暗", "Lights dim", sourceDB12, General, true},
	{PageUnreachable, Software, "页面无法访问", "Page not reachable", sourceShenzhen, Severe, true},
	{TonerOut, Consumables, "硒鼓碳粉耗尽", "Toner empty", sourceMonitoring, General, true},
	{MainsLost, Power, "市电中断", "Mains power lost (on UPS battery)", sourceMonitoring, Severe, true},
	{KioskOffline, Hardware, "终端离线", "Kiosk offline (no data)", sourceMonitoring, Severe, true},
	{ClockWrong, Hardware, "终端时钟错误", "Kiosk clock wrong", sourceMonitoring, General, true},
	{PaperRunningOut, Consumables, "纸张即将耗尽", "Paper will run out soon", sourceMonitoring, General, false},
	{TonerRunningOut, Consumables, "碳粉即将耗尽", "Toner will run out soon", sourceMonitoring, General, false},
}

var byID = func() map[string]*Fault {
	m := make(map[string]*Fault, len(All))
	for i := range All {
		m[All[i].ID] = &All[i]
	}
	return m
}()

// Lookup returns the fault with the id, or nil.
func Lookup(id string) *Fault { return byID[id] }

// IDs returns every fault id, sorted.
func IDs() []string {
	ids := make([]string, 0, len(All))
	for _, f := range All {
		ids = append(ids, f.ID)
	}
	sort.Strings(ids)
	return ids
}
