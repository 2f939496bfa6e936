package report

import (
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// A chart is a horizontal bar chart drawn as inline SVG by the page
// template: one labelled bar per row on a linear axis, with grid ticks and
// an optional goal line. Only the geometry is computed here; the template
// writes the elements, so every label goes through html/template's
// escaping like the rest of the page.
type chart struct {
	Title               string
	Width, Height, BarH int
	// X0 is where the bars start (the labels end left of it); PlotBottom
	// is where the grid lines end and the tick labels hang.
	X0, PlotBottom int
	Bars           []bar
	Ticks          []tick
	Goal           *goalLine
	// Note says what was left out ("3 more not drawn").
	Note string
}

type bar struct {
	Label, Value string
	// Y is the bar's top, TextY the baseline of its label and value.
	Y, TextY int
	W        int // 0 draws no bar (no value)
	ValueX   int
	Class    string
}

type tick struct {
	X     int
	Label string
}

type goalLine struct {
	X     int
	Label string
}

// barSpec is one bar to draw; a NaN value has no bar, only its text.
type barSpec struct {
	label, value string
	v            float64
	class        string
}

// Chart geometry, in SVG user units (px at 100%).
const (
	chartWidth   = 680
	chartRow     = 20
	chartBar     = 14
	chartTop     = 18 // room for the goal line's label
	chartAxis    = 22 // tick labels under the plot
	chartValueW  = 150
	chartFont    = 12
	chartMaxBars = 30
	chartLabelW  = 26 // runes; longer labels are cut with an ellipsis
)

// barChart lays out specs on the axis [lo, hi], ticks every step (0: no
// ticks). goal, if not NaN, draws a dashed line labelled goalLabel.
// noData is the note of a chart without bars.
func barChart(title string, specs []barSpec, lo, hi, step float64, tickLabel func(float64) string, goal float64,
	goalLabel, moreNote, noData string) *chart {
	c := &chart{Title: title, Width: chartWidth, BarH: chartBar}
	if len(specs) == 0 {
		c.Note = noData
		return c
	}
	if len(specs) > chartMaxBars {
		c.Note = moreNote
		specs = specs[:chartMaxBars]
	}
	labelW := 0
	for _, s := range specs {
		labelW = max(labelW, textWidth(cut(s.label, chartLabelW)))
	}
	c.X0 = min(max(labelW+10, 60), 240)
	plotW := chartWidth - c.X0 - chartValueW
	x := func(v float64) int {
		if hi <= lo {
			return c.X0
		}
		f := (v - lo) / (hi - lo)
		f = math.Min(math.Max(f, 0), 1)
		return c.X0 + int(math.Round(f*float64(plotW)))
	}
	for i, s := range specs {
		top := chartTop + i*chartRow
		b := bar{Label: cut(s.label, chartLabelW), Value: s.value, Y: top + (chartRow-chartBar)/2, TextY: top + chartRow/2 + 4,
			Class: s.class, ValueX: c.X0 + 4}
		if !math.IsNaN(s.v) {
			end := x(s.v)
			b.W, b.ValueX = end-c.X0, end+4
		}
		c.Bars = append(c.Bars, b)
	}
	c.PlotBottom = chartTop + len(specs)*chartRow
	c.Height = c.PlotBottom + chartAxis
	if step > 0 && hi > lo {
		for v := lo; v <= hi+step/1e6; v += step {
			c.Ticks = append(c.Ticks, tick{X: x(v), Label: tickLabel(v)})
		}
	}
	if !math.IsNaN(goal) && goal >= lo && goal <= hi {
		c.Goal = &goalLine{X: x(goal), Label: goalLabel}
	}
	return c
}

// niceScale returns the top of a count axis holding max and its tick
// step: 1, 2 or 5 times a power of ten, at most five steps.
func niceScale(maxV float64) (hi, step float64) {
	if maxV <= 0 {
		return 1, 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(maxV/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if maxV/step <= 5 {
			break
		}
	}
	step = math.Max(step, 1) // counts: no fractional ticks
	return math.Ceil(maxV/step) * step, step
}

// textWidth estimates the width of s at the chart's font size: CJK and
// other wide characters take a full em, the rest a bit over half. It only
// has to keep labels clear of the bars; the browser measures nothing for
// us without script.
func textWidth(s string) int {
	w := 0.0
	for _, r := range s {
		if isWide(r) {
			w += chartFont
		} else {
			w += 0.6 * chartFont
		}
	}
	return int(math.Ceil(w))
}

func isWide(r rune) bool {
	return r >= 0x1100 && (unicode.Is(unicode.Han, r) || unicode.In(r, unicode.Hangul, unicode.Hiragana, unicode.Katakana) ||
		r >= 0x3000 && r <= 0x303f || r >= 0xff00 && r <= 0xffef)
}

// cut shortens s to n runes, ending it with an ellipsis when it was longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func pctTick(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }

func countTick(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
