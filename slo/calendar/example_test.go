package calendar_test

import (
	"fmt"
	"time"

	"github.com/kioskmon/kioskmon/slo/calendar"
)

// A repair target of 8 business hours for a fault detected on the Friday
// before the 2026 Spring Festival: the make-up Saturday counts, the
// holiday does not.
func ExampleBusiness() {
	clock, err := calendar.Business(nil, calendar.Shanghai, calendar.DefaultHolidays())
	if err != nil {
		panic(err)
	}
	detected := time.Date(2026, 2, 13, 16, 30, 0, 0, calendar.Shanghai)
	fmt.Println(clock.Deadline(detected, 8*time.Hour).Format("2006-01-02 15:04"))
	fmt.Println(clock.Deadline(detected, 9*time.Hour).Format("2006-01-02 15:04"))
	fmt.Println(clock.Elapsed(detected, time.Date(2026, 2, 24, 10, 0, 0, 0, calendar.Shanghai)))

	// A pause awaiting parts stops the clock.
	paused := calendar.Excluding(clock, []calendar.Interval{{
		From: time.Date(2026, 2, 14, 9, 0, 0, 0, calendar.Shanghai),
		To:   time.Date(2026, 2, 14, 11, 0, 0, 0, calendar.Shanghai)}})
	fmt.Println(paused.Deadline(detected, 8*time.Hour).Format("2006-01-02 15:04"))
	// Output:
	// 2026-02-14 17:00
	// 2026-02-24 09:00
	// 10h0m0s
	// 2026-02-24 10:00
}
