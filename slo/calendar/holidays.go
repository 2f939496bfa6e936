package calendar

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kioskmon/kioskmon/yamlfile"
)

//go:embed data/*.yml
var embedded embed.FS

// Date is a civil date, as the holiday files write it (2026-10-01).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t, time.UTC), nil
}

// DateOf returns the date of t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// String is YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday { return weekdayOf(d.key()) }

// weekdayOf is the weekday of day number k (1970-01-01 was a Thursday).
func weekdayOf(k int32) time.Weekday { return time.Weekday(((k+4)%7 + 7) % 7) }

// AddDays returns d moved by n days.
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 0, 0, 0, 0, time.UTC), time.UTC)
}

// next is the day after d, without the time package's cost.
func (d Date) next() Date {
	days := 31
	switch d.Month {
	case time.April, time.June, time.September, time.November:
		days = 30
	case time.February:
		days = 28
		if y := d.Year; y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			days = 29
		}
	}
	switch {
	case d.Day < days:
		d.Day++
	case d.Month == time.December:
		d = Date{d.Year + 1, time.January, 1}
	default:
		d = Date{d.Year, d.Month + 1, 1}
	}
	return d
}

func (d Date) utc() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// key numbers days from 1970-01-01, for maps: days_from_civil of
// H. Hinnant's date algorithms, in integers (d must be a valid date).
func (d Date) key() int32 {
	y, m := int64(d.Year), int64(d.Month)
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + int64(d.Day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}

// UnmarshalYAML reads the scalar as written: YAML 1.1 would make it a timestamp.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a date YYYY-MM-DD", n.Line)
	}
	v, err := ParseDate(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes YYYY-MM-DD.
func (d Date) MarshalYAML() (any, error) { return d.String(), nil }

// Year is one year's holiday file: the statutory holidays (法定节假日, with
// the weekend days the State Council moves into them) and the make-up working
// days (调休上班日) of the State Council's yearly notice.
type Year struct {
	Version    string      `yaml:"version"`
	Year       int         `yaml:"year"`
	Source     string      `yaml:"source,omitempty"`
	Holidays   []Holiday   `yaml:"holidays"`
	MakeUpDays []MakeUpDay `yaml:"make_up_days,omitempty"`
	file       string
}

// Holiday is a run of days off, From to To inclusive.
type Holiday struct {
	Name string `yaml:"name"`
	From Date   `yaml:"from"`
	To   Date   `yaml:"to"`
}

// MakeUpDay is a weekend day worked in exchange for a holiday (调休).
type MakeUpDay struct {
	Date Date   `yaml:"date"`
	For  string `yaml:"for"`
}

var fileYearRe = regexp.MustCompile(`^cn-(\d{4})\.ya?ml$`)

// ParseYear reads and validates a holiday file; file names it in errors,
// which carry its line ("cn-2026.yml:12: ...").
func ParseYear(data []byte, file string) (*Year, error) {
	y := &Year{file: file}
	lines, err := yamlfile.Decode(data, file, y)
	if err != nil {
		return nil, err
	}
	fail := func(field, format string, args ...any) error {
		where := file
		for path := field; path != ""; {
			if line := lines.Line(path); line > 0 {
				where = fmt.Sprintf("%s:%d", file, line)
				break
			}
			i := strings.LastIndexByte(path, '.')
			path = path[:max(i, 0)]
		}
		return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
	}
	if y.Version != "v1" {
		return nil, fail("version", "version %q: want v1", y.Version)
	}
	if y.Year < 2000 || y.Year > 2100 {
		return nil, fail("year", "year %d: want the notice's year, 2000 to 2100", y.Year)
	}
	if m := fileYearRe.FindStringSubmatch(filepath.Base(file)); m != nil {
		if n, _ := strconv.Atoi(m[1]); n != y.Year {
			return nil, fail("year", "year %d in a file named for %d", y.Year, n)
		}
	}
	// A notice may start the New Year holiday in late December of the year
	// before (2024's began on 2023-12-30), and nothing reaches further.
	first, last := Date{y.Year - 1, time.December, 1}, Date{y.Year + 1, time.January, 31}
	inRange := func(d Date) bool { return d.key() >= first.key() && d.key() <= last.key() }
	seen := map[int32]string{}
	names := map[string]bool{}
	for i, h := range y.Holidays {
		field := fmt.Sprintf("holidays.%d", i)
		switch {
		case strings.TrimSpace(h.Name) == "":
			return nil, fail(field, "name is missing (元旦, 春节, ...)")
		case h.From == (Date{}) || h.To == (Date{}):
			return nil, fail(field, "from and to are required")
		case !inRange(h.From) || !inRange(h.To):
			return nil, fail(field+".from", "%s to %s is outside %d (December %d to January %d at most)", h.From, h.To, y.Year, y.Year-1, y.Year+1)
		case h.To.key() < h.From.key():
			return nil, fail(field+".to", "to %s is before from %s", h.To, h.From)
		case h.To.key()-h.From.key() >= 14:
			return nil, fail(field+".to", "%s to %s is more than two weeks; is a date wrong?", h.From, h.To)
		}
		for k := h.From.key(); k <= h.To.key(); k++ {
			if other, dup := seen[k]; dup {
				return nil, fail(field, "%s is already in %s", dateOfKey(k), other)
			}
			seen[k] = h.Name
		}
		names[h.Name] = true
	}
	for i, m := range y.MakeUpDays {
		field := fmt.Sprintf("make_up_days.%d", i)
		switch {
		case m.Date == (Date{}):
			return nil, fail(field, "date is required")
		case !inRange(m.Date):
			return nil, fail(field+".date", "%s is outside %d", m.Date, y.Year)
		case m.Date.Weekday() != time.Saturday && m.Date.Weekday() != time.Sunday:
			return nil, fail(field+".date", "%s is a %s: a make-up working day is a Saturday or Sunday", m.Date, m.Date.Weekday())
		case !names[m.For]:
			return nil, fail(field+".for", "for %q names none of this file's holidays", m.For)
		}
		if other, dup := seen[m.Date.key()]; dup {
			return nil, fail(field+".date", "%s is already in %s", m.Date, other)
		}
		seen[m.Date.key()] = "the make-up days"
	}
	return y, nil
}

func dateOfKey(k int32) Date { return DateOf(time.Unix(int64(k)*86400, 0), time.UTC) }

// DayKind says what the holiday calendar makes of a date.
type DayKind uint8

// Kinds of day.
const (
	Regular DayKind = iota // as its weekday says: Monday to Friday work, weekends off
	Off                    // a statutory holiday, or a weekend day moved into one
	MakeUp                 // a weekend day worked (调休上班)
)

// String names the kind of day.
func (k DayKind) String() string {
	return [...]string{"regular", "holiday", "make-up working day"}[k]
}

// Holidays is the holiday calendar: the years it knows and their days.
// It is read-only once built and safe for concurrent use.
type Holidays struct {
	years map[int]*Year
	days  map[int32]dayInfo
}

type dayInfo struct {
	kind DayKind
	name string
}

// NewHolidays builds a calendar of years; a date two files disagree on is
// an error.
func NewHolidays(years ...*Year) (*Holidays, error) {
	h := &Holidays{years: map[int]*Year{}, days: map[int32]dayInfo{}}
	for _, y := range years {
		if _, dup := h.years[y.Year]; dup {
			return nil, fmt.Errorf("holidays: year %d given twice", y.Year)
		}
		h.years[y.Year] = y
	}
	put := func(y *Year, k int32, info dayInfo) error {
		if old, ok := h.days[k]; ok && old.kind != info.kind {
			return fmt.Errorf("%s: %s is a %s here and a %s in another year's file", y.file, dateOfKey(k), info.kind, old.kind)
		}
		h.days[k] = info
		return nil
	}
	for _, y := range years {
		for _, hol := range y.Holidays {
			for k := hol.From.key(); k <= hol.To.key(); k++ {
				if err := put(y, k, dayInfo{Off, hol.Name}); err != nil {
					return nil, err
				}
			}
		}
		for _, m := range y.MakeUpDays {
			if err := put(y, m.Date.key(), dayInfo{MakeUp, m.For}); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// DefaultHolidays returns the embedded calendar (2025 and 2026), shared:
// a Holidays is read-only.
func DefaultHolidays() *Holidays { return defaultHolidays() }

var defaultHolidays = sync.OnceValue(func() *Holidays {
	h, err := LoadHolidays("")
	if err != nil {
		panic(err) // the embedded files are tested
	}
	return h
})

// LoadHolidays reads the embedded years, then every cn-YYYY.yml in dir (if
// dir is not ""): a file of dir replaces the embedded file of its year, so
// an operator corrects or adds a year without a new release.
func LoadHolidays(dir string) (*Holidays, error) {
	byYear := map[int]*Year{}
	load := func(fsys fs.FS, root, shown string) error {
		entries, err := fs.ReadDir(fsys, root)
		if err != nil {
			return fmt.Errorf("read holidays directory: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !fileYearRe.MatchString(e.Name()) {
				continue
			}
			data, err := fs.ReadFile(fsys, path.Join(root, e.Name()))
			if err != nil {
				return fmt.Errorf("read holidays: %w", err)
			}
			y, err := ParseYear(data, filepath.Join(shown, e.Name()))
			if err != nil {
				return err
			}
			byYear[y.Year] = y
		}
		return nil
	}
	if err := load(embedded, "data", "embedded"); err != nil {
		return nil, err
	}
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("holidays directory: %w", err)
		}
		if err := load(os.DirFS(dir), ".", dir); err != nil {
			return nil, err
		}
	}
	years := make([]*Year, 0, len(byYear))
	for _, y := range byYear {
		years = append(years, y)
	}
	slices.SortFunc(years, func(a, b *Year) int { return a.Year - b.Year })
	return NewHolidays(years...)
}

// Years lists the years the calendar has a file for, in order. A date in
// another year is taken as Regular: a report over such a year should say
// the holidays are unknown.
func (h *Holidays) Years() []int {
	if h == nil {
		return nil
	}
	out := make([]int, 0, len(h.years))
	for y := range h.years {
		out = append(out, y)
	}
	slices.Sort(out)
	return out
}

// Has reports whether the calendar has a file for year.
func (h *Holidays) Has(year int) bool {
	if h == nil {
		return false
	}
	_, ok := h.years[year]
	return ok
}

// Year returns the file of year, or nil.
func (h *Holidays) Year(year int) *Year {
	if h == nil {
		return nil
	}
	return h.years[year]
}

// Kind returns what d is, and the holiday's name for Off and MakeUp days.
// A nil calendar knows no holidays.
func (h *Holidays) Kind(d Date) (DayKind, string) {
	if h == nil {
		return Regular, ""
	}
	info, ok := h.days[d.key()]
	if !ok {
		return Regular, ""
	}
	return info.kind, info.name
}

// kindOf is Kind of the date numbered day (days since 1970-01-01).
func (h *Holidays) kindOf(day int32) DayKind {
	if h == nil {
		return Regular
	}
	return h.days[day].kind // absent: the zero dayInfo, Regular
}

// WorkingDay reports whether d is a working day: a make-up day, or a
// Monday to Friday that is no holiday.
func (h *Holidays) WorkingDay(d Date) bool {
	switch k, _ := h.Kind(d); k {
	case Off:
		return false
	case MakeUp:
		return true
	}
	wd := weekdayOf(d.key())
	return wd != time.Saturday && wd != time.Sunday
}
