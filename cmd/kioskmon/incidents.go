package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kioskmon/kioskmon/slo/api"
	"github.com/kioskmon/kioskmon/slo/ledger"
)

const incidentsUsage = `usage: kioskmon incidents COMMAND --server URL --token TOKEN [flags]
  list [--open] [--kiosk K] [--provider P] [--state S] [--limit N] [--json]
  show --id ID [--json]                       the incident and its evidence timeline
  report-fault --kiosk K --fault FAULT_ID --channel phone|web|wechat|sms|app [--at T]
                                              prints the incident's id as the last line
  ack|arrive|resolve|resume --id ID [--at T] [--note TEXT]
  dispatch --id ID --eta T                    T: the committed arrival (RFC 3339 or a duration from now)
  pause --id ID --reason site_closed|awaiting_parts|force_majeure [--approver NAME]
  regrade --id ID --severity LEVEL            a manager's decision
  close --id ID --satisfaction 1-5            after the follow-up visit
FAULT_ID is an id from kioskmon rules list.`

// lifecycleVerbs maps a command to the event it records.
var lifecycleVerbs = map[string]string{
	"ack": ledger.KindAcknowledged, "dispatch": ledger.KindDispatched, "arrive": ledger.KindArrived,
	"pause": ledger.KindPaused, "resume": ledger.KindResumed, "regrade": ledger.KindSeverity,
	"resolve": ledger.KindResolved, "close": ledger.KindClosed, "spare": ledger.KindSpare,
}

func runIncidents(args []string, stdout, stderr io.Writer) error {
	verb, fs, c, err := apiCommand("incidents", incidentsUsage, args, stderr)
	if err != nil {
		return err
	}
	asJSON := fs.Bool("json", false, "print JSON")
	switch verb {
	case "list":
		open := fs.Bool("open", false, "only incidents not yet resolved")
		var kiosk, provider, state, site string
		fs.StringVar(&kiosk, "kiosk", "", "only this kiosk")
		fs.StringVar(&site, "site", "", "only this site")
		fs.StringVar(&provider, "provider", "", "only this maintenance provider")
		fs.StringVar(&state, "state", "", "only this state (open, acknowledged, dispatched, on_site, resolved, closed)")
		limit := fs.Int("limit", 1000, "at most this many, newest first")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		for k, v := range map[string]string{"kiosk": kiosk, "site": site, "provider": provider, "state": state} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *open {
			q.Set("open", "true")
		}
		var reply struct {
			Incidents []ledger.Incident `json:"incidents"`
		}
		if err := c.call("GET", "/api/v1/incidents?"+q.Encode(), nil, &reply); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, reply.Incidents)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSEVERITY\tKIOSK\tFAULT\tOPENED\tPROVIDER")
		for _, inc := range reply.Incidents {
			state := inc.State
			if inc.Paused {
				state += " (paused)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, state, inc.Severity, inc.Kiosk, inc.Fault,
				inc.OpenedAt.Local().Format("2006-01-02 15:04"), inc.Provider)
		}
		return tw.Flush()
	case "show":
		id := fs.Int64("id", 0, "incident id")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *id <= 0 {
			return errors.New("show: --id is required")
		}
		var reply struct {
			Incident ledger.Incident `json:"incident"`
			Events   []ledger.Event  `json:"events"`
		}
		if err := c.call("GET", fmt.Sprintf("/api/v1/incidents/%d", *id), nil, &reply); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, reply)
		}
		inc := reply.Incident
		fmt.Fprintf(stdout, "incident %d: %s on %s (site %s, district %s, provider %s)\nseverity %s, state %s, source %s via %s\n",
			inc.ID, inc.Fault, inc.Kiosk, inc.Site, inc.District, inc.Provider, inc.Severity, inc.State, inc.Source, inc.Channel)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tEVENT\tACTOR\tDETAIL")
		for _, e := range reply.Events {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.Local().Format("2006-01-02 15:04:05"), e.Kind, e.Actor, eventDetail(e))
		}
		return tw.Flush()
	case "report-fault":
		var req api.ReportRequest
		var at string
		fs.StringVar(&req.Kiosk, "kiosk", "", "kiosk id")
		fs.StringVar(&req.Fault, "fault", "", "fault id, from kioskmon rules list")
		fs.StringVar(&req.Channel, "channel", "phone", "how the fault was reported: "+strings.Join(ledger.Channels[1:], ", "))
		fs.StringVar(&at, "at", "", "when it was noticed (default now)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if req.At, err = parseWhen("at", at); err != nil {
			return err
		}
		var reply struct {
			Incident ledger.Incident `json:"incident"`
			Created  bool            `json:"created"`
		}
		if err := c.call("POST", "/api/v1/incidents", req, &reply); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, reply)
		}
		if !reply.Created {
			fmt.Fprintf(stdout, "%s on %s is already incident %d (%s): the report was added to it\n",
				reply.Incident.Fault, reply.Incident.Kiosk, reply.Incident.ID, reply.Incident.State)
		}
		fmt.Fprintln(stdout, reply.Incident.ID)
		return nil
	}
	kind, ok := lifecycleVerbs[verb]
	if !ok {
		fmt.Fprintln(stderr, incidentsUsage)
		return fmt.Errorf("incidents: unknown command %q", verb)
	}
	id := fs.Int64("id", 0, "incident id")
	var req api.EventRequest
	var at, eta string
	req.Kind = kind
	fs.StringVar(&at, "at", "", "when it happened (default now): RFC 3339 or a duration from now (-10m)")
	fs.StringVar(&req.Note, "note", "", "a note for the timeline")
	switch verb {
	case "dispatch":
		fs.StringVar(&eta, "eta", "", "committed arrival on site: RFC 3339 or a duration from now (2h)")
	case "pause":
		fs.StringVar(&req.Reason, "reason", "", "why the clocks stop: "+strings.Join(ledger.PauseReasons, ", "))
		fs.StringVar(&req.Approver, "approver", "", "who approved a force majeure exemption (default: the token's name; needs a manager's token)")
	case "regrade":
		fs.StringVar(&req.Severity, "severity", "", "the new severity")
	case "close":
		fs.IntVar(&req.Satisfaction, "satisfaction", 0, "the follow-up visit's satisfaction score, 1 to 5")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *id <= 0 {
		return fmt.Errorf("%s: --id is required", verb)
	}
	if req.At, err = parseWhen("at", at); err != nil {
		return err
	}
	if req.CommittedArrival, err = parseWhen("eta", eta); err != nil {
		return err
	}
	var reply struct {
		Event ledger.Event `json:"event"`
	}
	if err := c.call("POST", fmt.Sprintf("/api/v1/incidents/%d/events", *id), req, &reply); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, reply.Event)
	}
	fmt.Fprintf(stdout, "incident %d: %s at %s by %s\n", *id, reply.Event.Kind, reply.Event.At.Local().Format(time.RFC3339), reply.Event.Actor)
	return nil
}

func eventDetail(e ledger.Event) string {
	d := e.Data
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("channel", d.Channel)
	add("severity", d.Severity)
	if !d.CommittedArrival.IsZero() {
		add("eta", d.CommittedArrival.Local().Format("2006-01-02 15:04"))
	}
	add("proof", d.Proof)
	add("reason", d.Reason)
	add("approver", d.Approver)
	if d.Satisfaction > 0 {
		add("satisfaction", strconv.Itoa(d.Satisfaction))
	}
	add("note", d.Note)
	return strings.Join(parts, " ")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
