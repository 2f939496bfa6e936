// Package execd runs the exporter under Telegraf's inputs.execd with
// signal = "STDIN": each line Telegraf writes to stdin asks for one gather,
// written to stdout as Influx line protocol.
//
// Each series becomes a line whose measurement is the series' Prometheus
// name and whose only field is "value"; labels become tags. kioskmon's
// Influx ingest (and VictoriaMetrics') names a field called "value" by the
// measurement alone, so a Telegraf that forwards these lines to kioskmon's
// /write stores exactly the catalogue's names (exporter/METRICS.md).
// Histograms arrive as their _bucket (tag le), _sum and _count series.
package execd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/plugins/serializers/influx"

	"github.com/kioskmon/kioskmon/exporter"
	"github.com/kioskmon/kioskmon/exporter/catalog"
)

// Run gathers once per line read from stdin and writes the gather to
// stdout, until stdin ends (Telegraf stopped) or ctx does.
func Run(ctx context.Context, g *exporter.Gatherer, stdin io.Reader, stdout io.Writer, logger log.Logger) error {
	serializer := &influx.Serializer{SortFields: true}
	if err := serializer.Init(); err != nil {
		return fmt.Errorf("influx serializer: %w", err)
	}
	lines := make(chan error)
	go func() {
		r := bufio.NewReader(stdin)
		for {
			_, err := r.ReadString('\n')
			lines <- err
			if err != nil {
				return
			}
		}
	}()
	out := bufio.NewWriter(stdout)
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case err = <-lines:
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		snap := g.Gather(ctx, time.Now())
		batch := Metrics(snap)
		data, err := serializer.SerializeBatch(batch)
		if err != nil {
			level.Error(logger).Log("msg", "cannot serialize a gather", "err", err)
			continue
		}
		if _, err := out.Write(data); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
	}
}

// Metrics turns a snapshot into Telegraf metrics, one per series.
func Metrics(s *exporter.Snapshot) []telegraf.Metric {
	types := map[string]telegraf.ValueType{}
	for i := range s.Series {
		m := s.Series[i].Metric
		switch m.Type {
		case catalog.Counter:
			types[m.Name] = telegraf.Counter
		case catalog.Gauge:
			types[m.Name] = telegraf.Gauge
		case catalog.Histogram:
			types[m.Name+"_bucket"], types[m.Name+"_sum"], types[m.Name+"_count"] = telegraf.Counter, telegraf.Counter, telegraf.Counter
		}
	}
	var out []telegraf.Metric
	s.Each(func(name string, labels []exporter.Label, v float64) {
		tags := make(map[string]string, len(labels))
		for _, l := range labels {
			// Line protocol has no empty tag values; Prometheus treats an
			// empty label as absent, so leaving it out is the same series.
			if strings.TrimSpace(l.Value) != "" {
				tags[l.Name] = l.Value
			}
		}
		out = append(out, metric.New(name, tags, map[string]any{"value": v}, s.Time, types[name]))
	})
	return out
}
