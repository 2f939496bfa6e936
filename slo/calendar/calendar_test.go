package calendar

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskmon/kioskmon/ingest/inventory"
)

// sh is a wall-clock time in Asia/Shanghai.
func sh(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func date(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func business(t *testing.T) *Hours {
	t.Helper()
	c, err := Business(nil, nil, DefaultHolidays())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEmbeddedHolidays(t *testing.T) {
	h := DefaultHolidays()
	if got := h.Years(); len(got) != 2 || got[0] != 2025 || got[1] != 2026 {
		t.Fatalf("years %v, want [2025 2026]", got)
	}
	f := func(day string, want DayKind, wantName string, working bool) {
		t.Helper()
		k, name := h.Kind(date(day))
		if k != want || name != wantName {
			t.Errorf("%s: %s %q, want %s %q", day, k, name, want, wantName)
		}
		if got := h.WorkingDay(date(day)); got != working {
			t.Errorf("%s: working day %v, want %v", day, got, working)
		}
	}
	// 2025 (国办发明电〔2024〕12号).
	f("2025-01-01", Off, "元旦", false)
	f("2025-01-26", MakeUp, "春节", true) // Sunday
	f("2025-01-28", Off, "春节", false)
	f("2025-02-04", Off, "春节", false)
	f("2025-02-05", Regular, "", true)
	f("2025-02-08", MakeUp, "春节", true) // Saturday
	f("2025-04-27", MakeUp, "劳动节", true)
	f("2025-05-05", Off, "劳动节", false)
	f("2025-06-02", Off, "端午节", false)
	f("2025-09-28", MakeUp, "国庆节、中秋节", true)
	f("2025-10-08", Off, "国庆节、中秋节", false)
	f("2025-10-11", MakeUp, "国庆节、中秋节", true)
	// 2026.
	f("2026-01-03", Off, "元旦", false)
	f("2026-01-04", MakeUp, "元旦", true) // Sunday
	f("2026-02-14", MakeUp, "春节", true) // Saturday
	f("2026-02-23", Off, "春节", false)   // Monday
	f("2026-02-28", MakeUp, "春节", true)
	f("2026-04-06", Off, "清明节", false)
	f("2026-05-09", MakeUp, "劳动节", true)
	f("2026-06-19", Off, "端午节", false)
	f("2026-09-20", MakeUp, "国庆节", true)
	f("2026-09-25", Off, "中秋节", false)
	f("2026-10-07", Off, "国庆节", false)
	f("2026-10-10", MakeUp, "国庆节", true)
	// Plain days.
	f("2026-03-07", Regular, "", false) // Saturday
	f("2026-03-09", Regular, "", true)  // Monday
	f("2027-01-01", Regular, "", true)  // no file for 2027: unknown, taken as regular
}

func TestHolidayDirectoryOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cn-2026.yml", "version: v1\nyear: 2026\nholidays:\n  - {name: 元旦, from: 2026-01-01, to: 2026-01-01}\n")
	write("cn-2027.yml", "version: v1\nyear: 2027\nholidays:\n  - {name: 元旦, from: 2027-01-01, to: 2027-01-03}\n")
	write("README.md", "not a year file")
	h, err := LoadHolidays(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Years(); len(got) != 3 || got[2] != 2027 {
		t.Fatalf("years %v, want [2025 2026 2027]", got)
	}
	if k, _ := h.Kind(date("2026-02-16")); k != Regular {
		t.Errorf("2026-02-16 is %s: the directory's cn-2026.yml should replace the embedded one", k)
	}
	if k, _ := h.Kind(date("2025-01-28")); k != Off {
		t.Errorf("2025-01-28 is %s: 2025 should stay embedded", k)
	}
	if k, _ := h.Kind(date("2027-01-02")); k != Off {
		t.Errorf("2027-01-02 is %s: the directory adds 2027", k)
	}

	write("cn-2028.yml", "version: v1\nyear: 2028\nholidays:\n  - {name: 元旦, from: 2028-01-01, to: 2028-01-01}\nmake_up_days:\n  - {date: 2028-01-03, for: 元旦}\n")
	_, err = LoadHolidays(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "cn-2028.yml")+":6: make_up_days.0.date: 2028-01-03 is a Monday") {
		t.Fatalf("error %v, want the file, line 6 and the Monday", err)
	}
	if _, err := LoadHolidays(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing directory should be an error")
	}
}

func TestParseYearErrors(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		_, err := ParseYear([]byte(body), "cn-2026.yml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	head := "version: v1\nyear: 2026\n"
	f("version: v2\nyear: 2026\n", "cn-2026.yml:1: version: version \"v2\": want v1")
	f("version: v1\nyear: 2027\n", "cn-2026.yml:2: year: year 2027 in a file named for 2026")
	f(head+"holidays:\n  - {name: 元旦, from: 2026-01-01, to: 2026-01-32}\n", "cn-2026.yml:4: date \"2026-01-32\": want YYYY-MM-DD")
	f(head+"holidays:\n  - {name: 元旦, from: 2026-01-03, to: 2026-01-01}\n", "cn-2026.yml:4: holidays.0.to: to 2026-01-01 is before from 2026-01-03")
	f(head+"holidays:\n  - {name: 元旦, from: 2025-01-01, to: 2025-01-01}\n", "cn-2026.yml:4: holidays.0.from: 2025-01-01 to 2025-01-01 is outside 2026")
	f(head+"holidays:\n  - {from: 2026-01-01, to: 2026-01-01}\n", "cn-2026.yml:4: holidays.0: name is missing")
	f(head+"holidays:\n  - {name: a, from: 2026-01-01, to: 2026-01-03}\n  - {name: b, from: 2026-01-03, to: 2026-01-04}\n",
		"cn-2026.yml:5: holidays.1: 2026-01-03 is already in a")
	f(head+"holidays:\n  - {name: a, from: 2026-01-01, to: 2026-01-01}\nmake_up_days:\n  - {date: 2026-01-04, for: b}\n",
		"cn-2026.yml:6: make_up_days.0.for: for \"b\" names none of this file's holidays")
	f(head+"holidays: []\nextra: 1\n", "cn-2026.yml:4: field extra not found")
}

func TestBusinessClockAcrossHolidayAndMakeUpDay(t *testing.T) {
	c := business(t)
	// Friday 2026-02-13 16:30. Saturday 02-14 is a make-up working day, 02-15
	// to 02-23 is the Spring Festival, Tuesday 02-24 is a working day.
	from := sh("2026-02-13 16:30")
	// Friday 16:30-17:30 1h + Saturday 08:30-12:00 and 13:30-17:30 7.5h +
	// Tuesday 08:30-10:00 1.5h = 10h.
	if got := c.Elapsed(from, sh("2026-02-24 10:00")); got != 10*time.Hour {
		t.Errorf("elapsed %s, want 10h", got)
	}
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := c.Deadline(from, d); !got.Equal(sh(want)) {
			t.Errorf("deadline after %s: %s, want %s", d, got.In(Shanghai).Format("2006-01-02 15:04"), want)
		}
	}
	f(0, "2026-02-13 16:30")
	f(time.Hour, "2026-02-13 17:30")
	f(90*time.Minute, "2026-02-14 09:00")  // the make-up Saturday
	f(270*time.Minute, "2026-02-14 12:00") // 1h + 3.5h: the morning's end, not after lunch
	f(5*time.Hour, "2026-02-14 14:00")
	f(8*time.Hour, "2026-02-14 17:00")
	f(9*time.Hour, "2026-02-24 09:00") // over the whole holiday
	// An ordinary Saturday does not count.
	if got := c.Elapsed(sh("2026-03-06 17:00"), sh("2026-03-09 09:00")); got != time.Hour {
		t.Errorf("Friday 17:00 to Monday 09:00: %s, want 1h", got)
	}
}

func TestTimezoneDayBoundary(t *testing.T) {
	c := business(t)
	// 2026-02-13T15:59Z is Friday 23:59 in Shanghai; 16:00Z is already
	// Saturday 2026-02-14, the make-up day. In UTC it would still be Friday.
	from := time.Date(2026, 2, 13, 15, 59, 0, 0, time.UTC)
	to := time.Date(2026, 2, 14, 1, 0, 0, 0, time.UTC) // 09:00 Shanghai
	if got := c.Elapsed(from, to); got != 30*time.Minute {
		t.Errorf("elapsed %s, want 30m (08:30-09:00 of the make-up Saturday)", got)
	}
	// National Day: 2026-09-30T16:00Z is October 1st in Shanghai.
	at := time.Date(2026, 9, 30, 16, 0, 0, 0, time.UTC)
	h := DefaultHolidays()
	if h.WorkingDay(DateOf(at, Shanghai)) {
		t.Error("2026-09-30T16:00Z is 10-01 in Shanghai, a holiday")
	}
	if !h.WorkingDay(DateOf(at, time.UTC)) {
		t.Error("2026-09-30 in UTC is a Wednesday, a working day")
	}
	if c.Open(at.Add(9 * time.Hour)) {
		t.Error("the business clock is stopped on October 1st, 09:00 Shanghai")
	}
	if !c.Open(time.Date(2026, 9, 30, 1, 0, 0, 0, time.UTC)) {
		t.Error("09:00 Shanghai on September 30th is business time")
	}
}

func TestSiteHoursClosedOvernight(t *testing.T) {
	site := inventory.Site{ID: "hall", OpeningHours: []inventory.OpeningHours{{Days: "mon-sun", Open: "09:00", Close: "21:00"}}}
	c, err := SiteHours(site, DefaultHolidays(), FollowHolidays)
	if err != nil {
		t.Fatal(err)
	}
	// Monday 20:00 to Tuesday 10:00: 20:00-21:00 and 09:00-10:00.
	if got := c.Elapsed(sh("2026-03-02 20:00"), sh("2026-03-03 10:00")); got != 2*time.Hour {
		t.Errorf("overnight: %s, want 2h", got)
	}
	if got := c.Deadline(sh("2026-03-02 20:30"), 2*time.Hour); !got.Equal(sh("2026-03-03 10:30")) {
		t.Errorf("deadline %s, want Tuesday 10:30", got.In(Shanghai))
	}
	// Qingming 04-04 to 04-06: closed; Friday 20:00 to Tuesday 10:00 is 2h.
	if got := c.Elapsed(sh("2026-04-03 20:00"), sh("2026-04-07 10:00")); got != 2*time.Hour {
		t.Errorf("over Qingming: %s, want 2h", got)
	}
	// A site that opens on holidays: 1h + 3 x 12h + 1h.
	open, err := SiteHours(site, DefaultHolidays(), IgnoreHolidays)
	if err != nil {
		t.Fatal(err)
	}
	if got := open.Elapsed(sh("2026-04-03 20:00"), sh("2026-04-07 10:00")); got != 38*time.Hour {
		t.Errorf("open on holidays: %s, want 38h", got)
	}
	// A site in another timezone keeps its own wall clock.
	utcSite := site
	utcSite.Timezone = "UTC"
	u, err := SiteHours(utcSite, nil, FollowHolidays)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Elapsed(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)); got != time.Hour {
		t.Errorf("UTC site: %s, want 1h", got)
	}
}

func TestDaylightSaving(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	f := func(hours []inventory.OpeningHours, from, to string, want time.Duration) {
		t.Helper()
		c, err := SiteHours(inventory.Site{ID: "s", Timezone: "America/New_York", OpeningHours: hours}, nil, FollowHolidays)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Elapsed(at(from), at(to)); got != want {
			t.Errorf("%s to %s: %s, want %s", from, to, got, want)
		}
		if dl := c.Deadline(at(from), want); !dl.Equal(at(to)) && want > 0 && c.Open(at(to).Add(-time.Minute)) {
			t.Errorf("%s + %s: deadline %s, want %s", from, want, dl.In(ny), to)
		}
	}
	allDay := []inventory.OpeningHours{{Days: "mon-sun", Open: "00:00", Close: "24:00"}}
	office := []inventory.OpeningHours{{Days: "mon-sun", Open: "09:00", Close: "17:00"}}
	// 2026-03-08: clocks go forward at 02:00, a 23-hour day; 11-01 back, 25 hours.
	f(allDay, "2026-03-08 00:00", "2026-03-09 00:00", 23*time.Hour)
	f(allDay, "2026-11-01 00:00", "2026-11-02 00:00", 25*time.Hour)
	f(allDay, "2026-03-07 12:00", "2026-03-09 12:00", 47*time.Hour)
	f(office, "2026-03-07 16:00", "2026-03-09 10:00", 10*time.Hour)
	f(office, "2026-10-31 16:00", "2026-11-02 10:00", 10*time.Hour)
}

func TestSiteHoursMakeUpDayAndNoHours(t *testing.T) {
	site := inventory.Site{ID: "hall", OpeningHours: []inventory.OpeningHours{
		{Days: "mon-fri", Open: "08:30", Close: "17:30"}, {Days: "sat", Open: "09:00", Close: "12:00"}}}
	c, err := SiteHours(site, DefaultHolidays(), FollowHolidays)
	if err != nil {
		t.Fatal(err)
	}
	day := func(d string) time.Duration { return c.Elapsed(sh(d+" 00:00"), sh(d+" 00:00").AddDate(0, 0, 1)) }
	if got := day("2026-05-09"); got != 9*time.Hour {
		t.Errorf("make-up Saturday 2026-05-09: %s, want 9h (a working day's 08:30-17:30)", got)
	}
	if got := day("2026-05-16"); got != 3*time.Hour {
		t.Errorf("ordinary Saturday: %s, want 3h", got)
	}
	if got := day("2026-05-01"); got != 0 {
		t.Errorf("Labour Day: %s, want 0", got)
	}
	if got := day("2026-01-04"); got != 9*time.Hour {
		t.Errorf("make-up Sunday 2026-01-04: %s, want 9h", got)
	}
	// No opening hours: open 24x7, holidays or not.
	always, err := SiteHours(inventory.Site{ID: "station"}, DefaultHolidays(), FollowHolidays)
	if err != nil {
		t.Fatal(err)
	}
	if got := always.Elapsed(sh("2026-10-01 00:00"), sh("2026-10-02 00:00")); got != 24*time.Hour {
		t.Errorf("no hours: %s, want 24h", got)
	}
	if _, err := NewHours(HoursConfig{Weekly: []inventory.OpeningHours{{Days: "mon", Open: "9:00", Close: "17:00"}}}); err == nil ||
		err.Error() != `open: "9:00" is not HH:MM` {
		t.Errorf("error %v, want the inventory parser's", err)
	}
}

func TestExcluding(t *testing.T) {
	from := sh("2026-03-02 10:00")
	c := Excluding(Always, []Interval{{sh("2026-03-02 10:30"), sh("2026-03-02 11:00")}})
	if got := c.Elapsed(from, sh("2026-03-02 12:00")); got != 90*time.Minute {
		t.Errorf("elapsed %s, want 1h30m", got)
	}
	if got := c.Deadline(from, time.Hour); !got.Equal(sh("2026-03-02 11:30")) {
		t.Errorf("deadline %s, want 11:30", got.In(Shanghai))
	}
	if got := c.Deadline(from, 30*time.Minute); !got.Equal(sh("2026-03-02 10:30")) {
		t.Errorf("deadline at the pause %s, want 10:30", got.In(Shanghai))
	}
	// Overlapping and touching pauses count once.
	c = Excluding(Always, []Interval{{sh("2026-03-02 10:40"), sh("2026-03-02 11:00")}, {sh("2026-03-02 10:30"), sh("2026-03-02 10:50")},
		{sh("2026-03-02 11:00"), sh("2026-03-02 11:10")}, {sh("2026-03-02 09:00"), sh("2026-03-02 09:00")}})
	if got := c.Elapsed(from, sh("2026-03-02 12:00")); got != 80*time.Minute {
		t.Errorf("overlapping: %s, want 1h20m", got)
	}
	// A pause not resumed: the deadline never comes unless it falls before.
	c = Excluding(Always, []Interval{{From: sh("2026-03-02 10:30")}})
	if got := c.Deadline(from, time.Hour); !got.IsZero() {
		t.Errorf("open pause: deadline %s, want none", got)
	}
	if got := c.Deadline(from, 20*time.Minute); !got.Equal(sh("2026-03-02 10:20")) {
		t.Errorf("open pause: deadline %s, want 10:20", got.In(Shanghai))
	}
	if got := c.Elapsed(from, sh("2026-03-03 10:00")); got != 30*time.Minute {
		t.Errorf("open pause: elapsed %s, want 30m", got)
	}
	// On the business clock a pause over lunch counts only its business time:
	// 11:00-15:00 is 2h30m of business time, the pause 11:30-14:00 takes 1h.
	b := Excluding(business(t), []Interval{{sh("2026-03-02 11:30"), sh("2026-03-02 14:00")}})
	if got := b.Elapsed(sh("2026-03-02 11:00"), sh("2026-03-02 15:00")); got != 90*time.Minute {
		t.Errorf("business with pause: %s, want 1h30m", got)
	}
	if got := b.Deadline(sh("2026-03-02 11:00"), 90*time.Minute); !got.Equal(sh("2026-03-02 15:00")) {
		t.Errorf("business with pause: deadline %s, want 15:00", got.In(Shanghai))
	}
}

func TestDateNext(t *testing.T) {
	for _, s := range []string{"1970-01-01", "1969-12-31", "2000-02-29", "2100-03-01", "1600-03-01", "0001-01-01"} {
		d := date(s)
		if got, want := d.key(), int32(d.utc().Unix()/86400); got != want {
			t.Errorf("%s: day %d, want %d", s, got, want)
		}
		if d.Weekday() != d.utc().Weekday() {
			t.Errorf("%s: %s, want %s", s, d.Weekday(), d.utc().Weekday())
		}
	}
	d := date("1999-12-25")
	for range 3 * 366 * 2 {
		if got, want := d.next(), d.AddDays(1); got != want {
			t.Fatalf("%s: next %s, want %s", d, got, want)
		}
		if d.next().key() != d.key()+1 || d.key() != int32(d.utc().Unix()/86400) {
			t.Fatalf("%s: key does not follow", d)
		}
		d = d.next()
	}
	if time.Weekday(((date("2026-03-09").key()+4)%7+7)%7) != time.Monday {
		t.Error("day numbers do not give the weekday")
	}
}

// TestDeadlineInvertsElapsed checks on random instants that Deadline is the
// earliest instant at which Elapsed reaches d.
func TestDeadlineInvertsElapsed(t *testing.T) {
	site, err := SiteHours(inventory.Site{ID: "s", OpeningHours: []inventory.OpeningHours{{Days: "mon-sat", Open: "09:00", Close: "18:00"}}},
		DefaultHolidays(), FollowHolidays)
	if err != nil {
		t.Fatal(err)
	}
	biz := business(t)
	r := rand.New(rand.NewPCG(1, 2))
	base := sh("2025-12-20 00:00")
	for i := range 3000 {
		from := base.Add(time.Duration(r.Int64N(int64(400 * 24 * time.Hour))))
		var clock Clock = biz
		switch i % 3 {
		case 1:
			clock = site
		case 2:
			p := from.Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
			clock = Excluding(biz, []Interval{{p, p.Add(time.Duration(r.Int64N(int64(72 * time.Hour))))}})
		}
		d := time.Duration(1+r.Int64N(int64(30*time.Hour))) / time.Second * time.Second
		dl := clock.Deadline(from, d)
		if got := clock.Elapsed(from, dl); got != d {
			t.Fatalf("case %d from %s d %s: deadline %s has elapsed %s", i, from, d, dl, got)
		}
		if got := clock.Elapsed(from, dl.Add(-time.Second)); got >= d {
			t.Fatalf("case %d from %s d %s: deadline %s is not the earliest", i, from, d, dl)
		}
	}
}
