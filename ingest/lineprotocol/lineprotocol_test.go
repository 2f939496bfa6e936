package lineprotocol

import (
	"fmt"
	"strings"
	"testing"
)

// render prints what the parser saw, one line of input per line of output.
func render(p *Parser) string {
	var b strings.Builder
	for p.Next() {
		if p.Err() != nil {
			fmt.Fprintf(&b, "%d: error: %s\n", p.LineNumber(), p.Err())
			continue
		}
		l := p.Line()
		fmt.Fprintf(&b, "%d: %s", p.LineNumber(), l.Measurement)
		for _, t := range l.Tags {
			fmt.Fprintf(&b, " %s=%s", t.Key, t.Value)
		}
		b.WriteString(" |")
		for _, f := range l.Fields {
			fmt.Fprintf(&b, " %s=%g", f.Key, f.Value)
		}
		if l.HasTimestamp {
			fmt.Fprintf(&b, " @%d", l.Timestamp)
		}
		if l.StringFields > 0 {
			fmt.Fprintf(&b, " strings=%d", l.StringFields)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestParse(t *testing.T) {
	f := func(input, want string) {
		t.Helper()
		var p Parser
		p.Reset([]byte(input))
		if got := render(&p); got != want {
			t.Errorf("input %q:\ngot\n%swant\n%s", input, got, want)
		}
	}
	f("cpu usage=0.5", "1: cpu | usage=0.5\n")
	f("cpu,host=a,dc=b usage=0.5,idle=1i 1700000000000000000", "1: cpu host=a dc=b | usage=0.5 idle=1 @1700000000000000000\n")
	f("paper,tray=1 level=3u,ok=true,jam=F", "1: paper tray=1 | level=3 ok=1 jam=0\n")
	f("app,page=home status=\"ok, fine\",latency=0.25 12", "1: app page=home | latency=0.25 @12 strings=1\n")
	f("my\\ metric,tag\\,1=a\\ b\\=c v=1", "1: my metric tag,1=a b=c | v=1\n")
	f("# comment\n\n  cpu v=1\r\ncpu v=2\n", "3: cpu | v=1\n4: cpu | v=2\n")
	f("cpu v=-1.5e3,w=+Inf", "1: cpu | v=-1500 w=+Inf\n")
	// Errors name what is wrong; the lines after them still parse.
	f("cpu\ncpu v=1", "1: error: no fields: a line needs at least one field after the measurement and tags, e.g. `cpu,host=a usage=0.5`\n2: cpu | v=1\n")
	f("cpu,host v=1", "1: error: tag \"host\" is not key=value\n")
	f("cpu,host= v=1", "1: error: tag \"host\" has an empty value\n")
	f(",host=a v=1", "1: error: empty measurement name\n")
	f("cpu v=abc", "1: error: field \"v\": value \"abc\" is not a number, an integer (1i), an unsigned (1u), a boolean or a quoted string\n")
	f("cpu v=1x2i", "1: error: field \"v\": integer value \"1x2i\": invalid syntax\n")
	f("cpu v=-1u", "1: error: field \"v\": unsigned value \"-1u\": invalid syntax\n")
	f("cpu v=\"open", "1: error: field \"v\": string value has no closing quote\n")
	f("cpu v=1 notatime", "1: error: timestamp \"notatime\" is not an integer\n")
	f("cpu v=", "1: error: field \"v\" has an empty value\n")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("cpu,host=a usage=0.5,idle=1i 1700000000000000000\n"))
	f.Add([]byte("app,page=home status=\"ok\",latency=0.25\n# c\nx\\ y,a\\=b=c\\,d v=t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parser
		p.Reset(data)
		lines := 0
		for p.Next() {
			lines++
			if lines > len(data)+1 {
				t.Fatalf("more lines than bytes")
			}
			if p.Err() != nil {
				continue
			}
			l := p.Line()
			if len(l.Measurement) == 0 || len(l.Fields)+l.StringFields == 0 {
				t.Fatalf("accepted a line without measurement or fields: %q", data)
			}
			for _, tag := range l.Tags {
				if len(tag.Key) == 0 || len(tag.Value) == 0 {
					t.Fatalf("accepted an empty tag: %q", data)
				}
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := range 60 {
		fmt.Fprintf(&sb, "kiosk_paper,tray=%d,instance=k-0001:9100 level_ratio=0.%d,state=1i 1700000000000\n", i, i)
	}
	body := []byte(sb.String())
	var p Parser
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p.Reset(body)
		for p.Next() {
			if p.Err() != nil {
				b.Fatal(p.Err())
			}
		}
	}
	b.ReportMetric(float64(b.N*120)/b.Elapsed().Seconds(), "samples/s")
}
