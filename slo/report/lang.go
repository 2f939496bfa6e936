package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// language holds the words of one report language. The HTML report is
// read by people, so its labels, event kinds and target kinds are
// translated; the CSV is read by programs and stays in English.
type language struct {
	code string // zh or en
	// tag is the page's lang attribute: with zh-CN Chromium picks the
	// Simplified Chinese glyphs of a font that covers several CJK scripts
	// (Noto CJK's .ttc holds SC, TC, JP and KR).
	tag   string
	words map[string]string
}

// Languages a report is written in; the first is the default.
var Languages = []string{"zh", "en"}

func lookupLanguage(lang string) (*language, error) {
	switch lang {
	case "", "zh", "zh-CN", "zh-cn":
		return &language{code: "zh", tag: "zh-CN", words: zhWords}, nil
	case "en":
		return &language{code: "en", tag: "en", words: enWords}, nil
	}
	return nil, fmt.Errorf("%w: report language %q: want %s", ErrBadRequest, lang, strings.Join(Languages, " or "))
}

// T is the word for key; a key neither table has shows as itself, so a
// missing translation is visible instead of blank (TestWordsComplete
// keeps the tables in step).
func (l *language) T(key string) string {
	if w, ok := l.words[key]; ok {
		return w
	}
	return key
}

// F formats the sentence key with args.
func (l *language) F(key string, args ...any) string { return fmt.Sprintf(l.T(key), args...) }

// value translates a value of an open set (a severity, a pause reason):
// known ones have a word under prefix+value, others are shown as they are.
func (l *language) value(prefix, v string) string {
	if v == "" {
		return l.T("unknown")
	}
	if w, ok := l.words[prefix+v]; ok {
		return w
	}
	return v
}

// name shows a name from the data (a provider, a site) as it is, or as
// unknown when empty.
func (l *language) name(v string) string {
	if v == "" {
		return l.T("unknown")
	}
	return v
}

// duration writes d for people: its two largest units from the first that
// is not zero (1h 25m, 2d 3h, 12m 30s). Seconds are rounded; the figures
// it shows are minutes to days, where seconds carry no meaning.
func (l *language) duration(d time.Duration) string {
	if d < 0 {
		return "-" + l.duration(-d)
	}
	d = d.Round(time.Second)
	if d == 0 {
		return "0"
	}
	units := [...]struct {
		size time.Duration
		key  string
	}{{24 * time.Hour, "unit.d"}, {time.Hour, "unit.h"}, {time.Minute, "unit.m"}, {time.Second, "unit.s"}}
	var parts []string
	seen := 0 // units looked at since the first that is not zero
	for _, u := range units {
		n := d / u.size
		d -= n * u.size
		if n == 0 && seen == 0 {
			continue
		}
		if n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+l.T(u.key))
		}
		if seen++; seen == 2 {
			break
		}
	}
	sep := " "
	if l.code == "zh" {
		sep = ""
	}
	return strings.Join(parts, sep)
}

// monthLabel is "2026年10月" or "October 2026".
func (l *language) monthLabel(from time.Time, month string) string {
	if from.IsZero() {
		return month
	}
	if l.code == "zh" {
		return fmt.Sprintf("%d年%d月", from.Year(), int(from.Month()))
	}
	return from.Format("January 2006")
}

var zhWords = map[string]string{
	"title":                 "月度运维服务质量报告",
	"policy":                "考核策略",
	"version":               "版本",
	"generated":             "生成时间",
	"tz.shanghai":           "北京时间",
	"period":                "统计周期",
	"chain.ok":              "数据完整性：账本哈希链校验通过，共 %d 条事件，记录未被篡改。",
	"chain.okfrom":          "数据完整性：账本哈希链自第 %d 条事件起至最新共 %d 条事件逐条校验通过（重算哈希、核对链接），记录未被篡改。",
	"chain.bad":             "数据完整性：账本哈希链校验失败（已校验 %d 条事件）：%s。本报告数据的可信性存疑。",
	"unknown":               "（未知）",
	"none":                  "无",
	"dash":                  "—",
	"summary":               "概要",
	"fig.incidents":         "故障数",
	"fig.compliance":        "达标率",
	"fig.mtta":              "平均响应时间",
	"fig.mttr":              "平均修复时间",
	"fig.p90":               "90% 修复时间",
	"fig.breaches":          "超时项",
	"fig.avail":             "可用率",
	"fig.coverage":          "巡检覆盖率",
	"fig.sat":               "满意度",
	"fig.open":              "未解决 %d 起",
	"fig.decided":           "已判定 %d 起",
	"fig.kiosks":            "涉及 %d / %d 台终端",
	"fig.below":             "低于 99%%：%d 台；低于 95%%：%d 台",
	"fig.covered":           "%d / %d 台",
	"fig.satcount":          "%d 次回访",
	"fig.goal":              "目标 %s",
	"s.incidents":           "%[1]s共发生故障 %[2]d 起，涉及 %[4]d 台终端中的 %[3]d 台；截至报告生成时仍有 %[5]d 起未解决。",
	"s.noincidents":         "%s未发生故障。",
	"s.compliance":          "已判定的 %d 起故障中，%d 起全部时限达标，达标率 %s。",
	"s.nodecided":           "尚无可判定达标与否的故障。",
	"s.breaches":            "共有 %d 项时限超时，明细见“超时清单”。",
	"s.nobreaches":          "没有时限超时。",
	"s.times":               "已响应的 %d 起故障平均响应时间 %s；已修复的 %d 起平均修复时间 %s，其中 90%% 在 %s 内修复（另有 %d 起尚未修复）。",
	"s.avail":               "终端在开放时间内的平均可用率为 %s（以“%s”级故障计为不可用），低于 99%% 的终端 %d 台。",
	"s.coverage":            "每 %[3]s 至少巡检一次的终端 %[1]d / %[2]d 台（%[4]s）；本月巡检 %[5]d 次，发现异常 %[6]d 次。",
	"s.nocoverage":          "本报告未包含远程巡检记录。",
	"s.sat":                 "回访满意度平均 %.1f 分（满分 5 分，共 %d 次回访）。",
	"s.nosat":               "本月没有回访满意度记录。",
	"s.holidays":            "注意：节假日日历缺少 %s 年的数据，这些年份的节假日按工作日计算。",
	"charts":                "图表",
	"chart.compliance":      "各运维单位达标率",
	"chart.severity":        "各等级故障数",
	"chart.avail":           "各区县终端可用率",
	"chart.sat":             "回访满意度分布",
	"chart.more":            "另有 %d 项未画出",
	"chart.nodata":          "无数据",
	"tables":                "分项统计",
	"by.provider":           "按运维单位",
	"by.district":           "按区县",
	"by.severity":           "按故障等级",
	"by.site":               "按场所（故障数前 %d）",
	"by.category":           "按故障类别",
	"top":                   "仅列出故障数最多的 %d 个，共 %d 个。",
	"col.name":              "名称",
	"col.incidents":         "故障数",
	"col.open":              "未解决",
	"col.decided":           "已判定",
	"col.compliance":        "达标率",
	"col.mtta":              "平均响应",
	"col.mttr":              "平均修复",
	"col.p90":               "90% 修复",
	"col.breached":          "超时（响应/到场/修复）",
	"col.avail":             "可用率",
	"col.category":          "类别",
	"breaches":              "超时清单",
	"breaches.intro":        "按超出时长从大到小排列。每起故障下方是其证据时间线（账本事件，含哈希）。",
	"breaches.more":         "另有 %d 项超时未列出（仅列出超出最多的 %d 项，共 %d 项）。",
	"breaches.none":         "本月没有时限超时。",
	"col.incident":          "故障单",
	"col.kiosk":             "终端",
	"col.site":              "场所",
	"col.provider":          "运维单位",
	"col.fault":             "故障",
	"col.severity":          "等级",
	"col.detected":          "发现时间",
	"col.target":            "考核项",
	"col.allowed":           "时限",
	"col.took":              "实际用时",
	"col.over":              "超出",
	"still.open":            "未解决，仍在增加",
	"timeline":              "证据时间线",
	"timeline.seen":         "时间线见上方同一故障单。",
	"timeline.missing":      "未附时间线（仅附超出最多的故障单的时间线）。",
	"col.time":              "时间",
	"col.event":             "事件",
	"col.actor":             "操作人",
	"col.detail":            "详情",
	"col.hash":              "哈希",
	"availability":          "终端可用率",
	"avail.intro":           "可用率按所在场所的开放时间计算：发生“%s”级故障期间（从发现到修复）计为不可用。",
	"avail.worst":           "可用率最低的终端",
	"avail.none":            "本月所有终端均全程可用。",
	"col.district":          "区县",
	"col.opentime":          "开放时长",
	"col.down":              "不可用时长",
	"inspection":            "远程巡检覆盖",
	"insp.intro":            "要求每台终端至少每 %s 巡检一次。",
	"insp.byprovider":       "按运维单位",
	"insp.uncovered":        "未达要求的终端",
	"insp.alluncovered":     "所有终端均达到巡检要求。",
	"col.kiosks":            "终端数",
	"col.covered":           "达标",
	"col.coverage":          "覆盖率",
	"col.gap":               "最长间隔",
	"gap.never":             "近 %s 未巡检",
	"satisfaction":          "回访满意度",
	"col.score":             "评分",
	"col.count":             "次数",
	"score":                 "%d 分",
	"refills":               "耗材补充",
	"refills.none":          "本月没有耗材类故障。",
	"col.resolved":          "已解决",
	"unit.d":                "天",
	"unit.h":                "小时",
	"unit.m":                "分",
	"unit.s":                "秒",
	"sep":                   "；",
	"d.fault":               "故障 %s",
	"d.severity":            "等级 %s",
	"d.channel":             "渠道 %s",
	"d.committed":           "承诺到场 %s",
	"d.proof":               "到场凭据 %s",
	"d.reason":              "原因 %s",
	"d.approver":            "批准人 %s",
	"d.satisfaction":        "满意度 %d 分",
	"d.note":                "备注：%s",
	"kind.opened":           "发现故障",
	"kind.reported":         "用户报障",
	"kind.acknowledged":     "响应",
	"kind.dispatched":       "派单",
	"kind.arrived":          "到场",
	"kind.spare_provided":   "提供备机",
	"kind.paused":           "暂停计时",
	"kind.resumed":          "恢复计时",
	"kind.severity_changed": "等级变更",
	"kind.cleared":          "告警消除",
	"kind.recurred":         "告警复发",
	"kind.resolved":         "修复",
	"kind.closed":           "回访关单",
	"target.response":       "响应时限",
	"target.arrival":        "到场时限",
	"target.repair":         "修复时限",
	"sev.urgent":            "紧急",
	"sev.moderate":          "较重",
	"sev.minor":             "轻微",
	"sev.severe":            "严重",
	"sev.general":           "一般",
	"reason.site_closed":    "场所关闭",
	"reason.awaiting_parts": "等待备件",
	"reason.force_majeure":  "不可抗力（豁免）",
	"proof.api":             "工程师上报",
	"proof.service_mode":    "终端进入维护模式",
	"channel.system":        "系统告警",
	"channel.phone":         "电话",
	"channel.web":           "网站",
	"channel.wechat":        "微信",
	"channel.sms":           "短信",
	"channel.app":           "App",
	"cat.hardware":          "硬件",
	"cat.software":          "软件",
	"cat.network":           "网络",
	"cat.power":             "电源",
	"cat.consumables":       "耗材",
}

var enWords = map[string]string{
	"title":                 "Monthly O&M service report",
	"policy":                "Policy",
	"version":               "version",
	"generated":             "Generated",
	"tz.shanghai":           "Asia/Shanghai",
	"period":                "Period",
	"chain.ok":              "Integrity: the ledger's hash chain verified, %d events, no record altered.",
	"chain.okfrom":          "Integrity: the ledger's hash chain verified from event %d to the head, %d events (each hash recomputed, each link followed): no record altered.",
	"chain.bad":             "Integrity: the ledger's hash chain FAILED verification (%d events checked): %s. The figures of this report are in doubt.",
	"unknown":               "(unknown)",
	"none":                  "none",
	"dash":                  "—",
	"summary":               "Summary",
	"fig.incidents":         "Incidents",
	"fig.compliance":        "Compliance",
	"fig.mtta":              "MTTA",
	"fig.mttr":              "MTTR",
	"fig.p90":               "p90 repair",
	"fig.breaches":          "Breaches",
	"fig.avail":             "Availability",
	"fig.coverage":          "Inspection coverage",
	"fig.sat":               "Satisfaction",
	"fig.open":              "%d open",
	"fig.decided":           "%d decided",
	"fig.kiosks":            "on %d of %d kiosks",
	"fig.below":             "under 99%%: %d kiosks; under 95%%: %d",
	"fig.covered":           "%d of %d kiosks",
	"fig.satcount":          "%d follow-up visits",
	"fig.goal":              "goal %s",
	"s.incidents":           "In %s, %d incidents were opened on %d of the %d kiosks; still open when the report was made: %d.",
	"s.noincidents":         "No incident was opened in %s.",
	"s.compliance":          "Of the %d decided incidents, %d met every target: %s compliance.",
	"s.nodecided":           "No incident is decided yet.",
	"s.breaches":            "Targets breached: %d (see the breach list).",
	"s.nobreaches":          "No target was breached.",
	"s.times":               "Of the %d incidents acknowledged, the mean time to acknowledge was %s; of the %d repaired, the mean time to repair was %s, and 90%% of them were repaired within %s (%d not repaired yet).",
	"s.avail":               "Kiosks were available %s of their opening hours on average (unavailable during %s incidents); kiosks under 99%%: %d.",
	"s.coverage":            "%d of %d kiosks were inspected at least every %s (%s); inspections this month: %d, with a failed item: %d.",
	"s.nocoverage":          "This report holds no remote inspection records.",
	"s.sat":                 "Follow-up visits scored %.1f out of 5 on average (%d visits).",
	"s.nosat":               "No satisfaction score was recorded this month.",
	"s.holidays":            "Note: the holiday calendar has no file for %s; holidays of those years were counted as working days.",
	"charts":                "Charts",
	"chart.compliance":      "Compliance by provider",
	"chart.severity":        "Incidents by severity",
	"chart.avail":           "Availability by district",
	"chart.sat":             "Satisfaction scores",
	"chart.more":            "%d more not drawn",
	"chart.nodata":          "no data",
	"tables":                "Breakdown",
	"by.provider":           "By provider",
	"by.district":           "By district",
	"by.severity":           "By severity",
	"by.site":               "By site (top %d by incidents)",
	"by.category":           "By category",
	"top":                   "Showing the %d with the most incidents of %d.",
	"col.name":              "Name",
	"col.incidents":         "Incidents",
	"col.open":              "Open",
	"col.decided":           "Decided",
	"col.compliance":        "Compliance",
	"col.mtta":              "MTTA",
	"col.mttr":              "MTTR",
	"col.p90":               "p90 repair",
	"col.breached":          "Breached (response/arrival/repair)",
	"col.avail":             "Availability",
	"col.category":          "Category",
	"breaches":              "Breach list",
	"breaches.intro":        "The largest overrun first. Under each incident is its evidence timeline: the ledger's events, with their hashes.",
	"breaches.more":         "%d more breaches are not listed (the %d largest of %d are).",
	"breaches.none":         "No target was breached this month.",
	"col.incident":          "Incident",
	"col.kiosk":             "Kiosk",
	"col.site":              "Site",
	"col.provider":          "Provider",
	"col.fault":             "Fault",
	"col.severity":          "Severity",
	"col.detected":          "Detected",
	"col.target":            "Target",
	"col.allowed":           "Allowed",
	"col.took":              "Took",
	"col.over":              "Over by",
	"still.open":            "open, still growing",
	"timeline":              "Evidence timeline",
	"timeline.seen":         "Timeline above, under the same incident.",
	"timeline.missing":      "Timeline not included (only the largest overruns carry one).",
	"col.time":              "Time",
	"col.event":             "Event",
	"col.actor":             "Actor",
	"col.detail":            "Detail",
	"col.hash":              "Hash",
	"availability":          "Availability",
	"avail.intro":           "Availability counts each kiosk's site opening hours: a kiosk is unavailable while a %s incident is open on it (detection to resolution).",
	"avail.worst":           "Least available kiosks",
	"avail.none":            "Every kiosk was available all month.",
	"col.district":          "District",
	"col.opentime":          "Open time",
	"col.down":              "Down time",
	"inspection":            "Remote inspection coverage",
	"insp.intro":            "Every kiosk must be inspected at least every %s.",
	"insp.byprovider":       "By provider",
	"insp.uncovered":        "Kiosks not covered",
	"insp.alluncovered":     "Every kiosk was covered.",
	"col.kiosks":            "Kiosks",
	"col.covered":           "Covered",
	"col.coverage":          "Coverage",
	"col.gap":               "Longest gap",
	"gap.never":             "none in %s",
	"satisfaction":          "Satisfaction",
	"col.score":             "Score",
	"col.count":             "Count",
	"score":                 "%d",
	"refills":               "Consumables refills",
	"refills.none":          "No consumables incident this month.",
	"col.resolved":          "Resolved",
	"unit.d":                "d",
	"unit.h":                "h",
	"unit.m":                "m",
	"unit.s":                "s",
	"sep":                   "; ",
	"d.fault":               "fault %s",
	"d.severity":            "severity %s",
	"d.channel":             "via %s",
	"d.committed":           "committed arrival %s",
	"d.proof":               "proof: %s",
	"d.reason":              "reason: %s",
	"d.approver":            "approved by %s",
	"d.satisfaction":        "satisfaction %d/5",
	"d.note":                "note: %s",
	"target.response":       "response",
	"target.arrival":        "arrival",
	"target.repair":         "repair",
	"kind.opened":           "opened",
	"kind.reported":         "reported",
	"kind.acknowledged":     "acknowledged",
	"kind.dispatched":       "dispatched",
	"kind.arrived":          "arrived",
	"kind.spare_provided":   "spare provided",
	"kind.paused":           "paused",
	"kind.resumed":          "resumed",
	"kind.severity_changed": "severity changed",
	"kind.cleared":          "alert cleared",
	"kind.recurred":         "alert recurred",
	"kind.resolved":         "resolved",
	"kind.closed":           "closed",
	"sev.urgent":            "urgent",
	"sev.moderate":          "moderate",
	"sev.minor":             "minor",
	"sev.severe":            "severe",
	"sev.general":           "general",
	"reason.site_closed":    "site closed",
	"reason.awaiting_parts": "awaiting parts",
	"reason.force_majeure":  "force majeure (exemption)",
	"proof.api":             "engineer's report",
	"proof.service_mode":    "kiosk in service mode",
	"channel.system":        "system alert",
	"channel.phone":         "phone",
	"channel.web":           "web",
	"channel.wechat":        "WeChat",
	"channel.sms":           "SMS",
	"channel.app":           "app",
	"cat.hardware":          "hardware",
	"cat.software":          "software",
	"cat.network":           "network",
	"cat.power":             "power",
	"cat.consumables":       "consumables",
}
