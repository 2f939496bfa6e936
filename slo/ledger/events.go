package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Event kinds: an incident's lifecycle.
const (
	KindOpened       = "opened"       // a graded fault fired, or a person reported it
	KindReported     = "reported"     // a person reported a fault already open
	KindAcknowledged = "acknowledged" // remote response begins
	KindDispatched   = "dispatched"   // an engineer is sent, with the committed arrival
	KindArrived      = "arrived"      // the engineer is on site
	KindSpare        = "spare_provided"
	KindPaused       = "paused" // the clocks stop, for a typed reason
	KindResumed      = "resumed"
	KindSeverity     = "severity_changed"
	KindCleared      = "cleared"  // the fault's alert resolved
	KindRecurred     = "recurred" // it fired again before the incident resolved
	KindResolved     = "resolved"
	KindClosed       = "closed" // after the follow-up visit, with satisfaction
)

// Kinds lists every event kind.
var Kinds = []string{KindOpened, KindReported, KindAcknowledged, KindDispatched, KindArrived, KindSpare, KindPaused,
	KindResumed, KindSeverity, KindCleared, KindRecurred, KindResolved, KindClosed}

// Incident states.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateDispatched   = "dispatched"
	StateOnSite       = "on_site"
	StateResolved     = "resolved"
	StateClosed       = "closed"
)

// Pause reasons.
const (
	PauseSiteClosed    = "site_closed"
	PauseAwaitingParts = "awaiting_parts"
	PauseForceMajeure  = "force_majeure" // an exemption, with its approver
)

// PauseReasons lists the reasons a clock may stop for.
var PauseReasons = []string{PauseSiteClosed, PauseAwaitingParts, PauseForceMajeure}

// Channels a fault reaches the provider by (DB12/T 1060 §6.2).
var Channels = []string{"system", "phone", "web", "wechat", "sms", "app"}

// Proofs of arrival.
const (
	ProofAPI         = "api"          // the engineer said so
	ProofServiceMode = "service_mode" // the kiosk entered service mode
)

// Event is one entry of the log.
type Event struct {
	Seq      int64  `json:"seq"`
	Incident int64  `json:"incident"`
	Kind     string `json:"kind"`
	// At is when it happened; RecordedAt when the ledger recorded it.
	At         time.Time `json:"at"`
	RecordedAt time.Time `json:"recorded_at"`
	Actor      string    `json:"actor"`
	Source     string    `json:"source"`
	Data       EventData `json:"data"`
	PrevHash   string    `json:"prev_hash"`
	Hash       string    `json:"hash"`
}

// EventData is what an event carries beyond its kind.
type EventData struct {
	// opened: the incident as opened (the chain covers it).
	Kiosk    string `json:"kiosk,omitempty"`
	Site     string `json:"site,omitempty"`
	District string `json:"district,omitempty"`
	Provider string `json:"provider,omitempty"`
	Fault    string `json:"fault,omitempty"`
	Category string `json:"category,omitempty"`
	// Severity: opened, severity_changed (the new one).
	Severity string `json:"severity,omitempty"`
	// Channel: opened, reported.
	Channel  string `json:"channel,omitempty"`
	AlertKey string `json:"alert_key,omitempty"`
	// CommittedArrival: dispatched.
	CommittedArrival time.Time `json:"committed_arrival,omitzero"`
	// Proof: arrived.
	Proof string `json:"proof,omitempty"`
	// Reason: paused; resolved (how).
	Reason   string `json:"reason,omitempty"`
	Approver string `json:"approver,omitempty"`
	// Satisfaction: closed, 1 to 5.
	Satisfaction int    `json:"satisfaction,omitempty"`
	Note         string `json:"note,omitempty"`
}

// Errors callers branch on (the API maps them to 404, 409 and 400).
var (
	ErrNotFound = errors.New("no such incident")
	ErrConflict = errors.New("not allowed in the incident's state")
	ErrInvalid  = errors.New("invalid event")
)

// chainHash is the hash of e given the previous event's hash. Every field
// that says what happened is covered, in a fixed order.
func chainHash(prev string, e *Event) (string, error) {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return "", err
	}
	return chainHashData(prev, e, data), nil
}

// chainHashData is chainHash of an event whose data is already encoded:
// the bytes stored are the bytes hashed.
func chainHashData(prev string, e *Event, data []byte) string {
	var buf []byte
	sum := appendChainHash(&buf, []byte(prev), e, data)
	return string(sum[:])
}

// appendChainHash computes the hash into a hex array, using *buf as
// scratch space: a scan of millions of events allocates nothing per event.
func appendChainHash(buf *[]byte, prev []byte, e *Event, data []byte) [2 * sha256.Size]byte {
	b := (*buf)[:0]
	b = append(append(b, prev...), 0)
	b = append(strconv.AppendInt(b, e.Seq, 10), 0)
	b = append(strconv.AppendInt(b, e.Incident, 10), 0)
	b = append(append(b, e.Kind...), 0)
	b = append(strconv.AppendInt(b, e.At.UnixMilli(), 10), 0)
	b = append(strconv.AppendInt(b, e.RecordedAt.UnixMilli(), 10), 0)
	b = append(append(b, e.Actor...), 0)
	b = append(append(b, e.Source...), 0)
	b = append(append(b, data...), 0)
	*buf = b
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return out
}

// apply checks that e may happen to inc now and applies it. It is the whole
// lifecycle: the projection in the incidents table is what it leaves.
func apply(inc *Incident, e *Event) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	conflict := func() error {
		return fmt.Errorf("%w: incident %d is %s%s; %s is not possible", ErrConflict, inc.ID, inc.State, pausedNote(inc), e.Kind)
	}
	if e.Actor == "" {
		return bad("actor is required: who did it")
	}
	if e.Kind != KindOpened && e.At.Before(inc.UpdatedAt) {
		return bad("%s at %s is before the incident's last event (%s): events are recorded in order",
			e.Kind, e.At.UTC().Format(time.RFC3339), inc.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if inc.State == StateClosed {
		return conflict()
	}
	live := inc.State != StateResolved
	switch e.Kind {
	case KindOpened:
		return bad("opened is recorded by opening an incident")
	case KindReported:
		if !slices.Contains(Channels, e.Data.Channel) {
			return bad("channel %q is not one of %v", e.Data.Channel, Channels)
		}
	case KindAcknowledged:
		if inc.State != StateOpen {
			return conflict()
		}
		inc.State = StateAcknowledged
	case KindDispatched:
		if inc.State != StateOpen && inc.State != StateAcknowledged && inc.State != StateDispatched {
			return conflict()
		}
		if e.Data.CommittedArrival.IsZero() || e.Data.CommittedArrival.Before(e.At) {
			return bad("committed_arrival is required, at or after the dispatch")
		}
		inc.State = StateDispatched
	case KindArrived:
		if inc.State != StateOpen && inc.State != StateAcknowledged && inc.State != StateDispatched {
			return conflict()
		}
		if e.Data.Proof != ProofAPI && e.Data.Proof != ProofServiceMode {
			return bad("proof %q is not api or service_mode", e.Data.Proof)
		}
		inc.State = StateOnSite
	case KindSpare:
		if !live {
			return conflict()
		}
	case KindPaused:
		if !live || inc.Paused {
			return conflict()
		}
		if !slices.Contains(PauseReasons, e.Data.Reason) {
			return bad("reason %q is not one of %v", e.Data.Reason, PauseReasons)
		}
		if e.Data.Reason == PauseForceMajeure && e.Data.Approver == "" {
			return bad("a force majeure exemption needs its approver")
		}
		inc.Paused = true
	case KindResumed:
		if !inc.Paused {
			return conflict()
		}
		inc.Paused = false
	case KindSeverity:
		// Regraded while open only: the report's figures stop reading an
		// incident at its resolution, so a later grade would make the
		// incident's page and the month's report disagree.
		if !live {
			return conflict()
		}
		if e.Data.Severity == "" || e.Data.Severity == inc.Severity {
			return bad("severity %q: give the new severity", e.Data.Severity)
		}
		inc.Severity = e.Data.Severity
	case KindCleared:
		if !live || !inc.ClearedAt.IsZero() {
			return conflict()
		}
		inc.ClearedAt = e.At
	case KindRecurred:
		if !live || inc.ClearedAt.IsZero() {
			return conflict()
		}
		inc.ClearedAt = time.Time{}
	case KindResolved:
		if !live {
			return conflict()
		}
		inc.State, inc.ResolvedAt, inc.Paused = StateResolved, e.At, false
	case KindClosed:
		if inc.State != StateResolved {
			return conflict()
		}
		if e.Data.Satisfaction < 1 || e.Data.Satisfaction > 5 {
			return bad("satisfaction %d: give the follow-up visit's score, 1 to 5", e.Data.Satisfaction)
		}
		inc.State, inc.ClosedAt = StateClosed, e.At
	default:
		return bad("kind %q is not one of %v", e.Kind, Kinds)
	}
	inc.UpdatedAt = e.At
	return nil
}

func pausedNote(inc *Incident) string {
	if inc.Paused {
		return " (paused)"
	}
	return ""
}
