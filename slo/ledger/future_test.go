package ledger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestNoEventFromTheFuture: the time a fault began, and every event of an
// import, are held to the same bound as a recorded event: at most five
// minutes ahead of the ledger's clock. An incident opened in the future
// could not be acknowledged now.
func TestNoEventFromTheFuture(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Now().UTC()
	future := now.Add(2 * time.Hour)
	open := func(kiosk string, at time.Time) OpenRequest {
		return OpenRequest{Kiosk: kiosk, Site: "s1", District: "d1", Provider: "p1", Fault: "hw.paper_jam", Category: "hardware",
			Severity: "moderate", Source: "person", Channel: "phone", Actor: "li", At: at}
	}
	if _, _, err := l.OpenIncident(ctx, open("k1", future)); !errors.Is(err, ErrInvalid) {
		t.Errorf("an incident opened two hours ahead: %v, want ErrInvalid", err)
	}
	if _, _, err := l.OpenIncident(ctx, open("k1", now.Add(time.Minute))); err != nil {
		t.Errorf("a minute ahead (clocks disagree a little): %v", err)
	}
	if _, err := l.Import(ctx, []History{{Open: open("k2", future)}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an imported incident opened two hours ahead: %v, want ErrInvalid", err)
	}
	if _, err := l.Import(ctx, []History{{Open: open("k3", now.Add(-time.Hour)), Events: []Event{
		{Kind: KindResolved, At: future, Actor: "import", Source: "itsm"}}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an imported resolution two hours ahead: %v, want ErrInvalid", err)
	}
}
