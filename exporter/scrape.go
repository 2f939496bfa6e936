package exporter

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kioskmon/kioskmon/exporter/catalog"
)

// snapshotCollector exposes the gatherer's last snapshot to client_golang,
// which speaks both the text format and OpenMetrics.
type snapshotCollector struct {
	g     *Gatherer
	descs map[string]*prometheus.Desc
}

func newSnapshotCollector(g *Gatherer) *snapshotCollector {
	descs := make(map[string]*prometheus.Desc, len(catalog.Metrics))
	for _, m := range catalog.Metrics {
		descs[m.Name] = prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
	}
	return &snapshotCollector{g: g, descs: descs}
}

// Describe sends nothing: the collector is unchecked, as the set of series
// depends on the kiosk's devices.
func (c *snapshotCollector) Describe(chan<- *prometheus.Desc) {}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.g.Last()
	if s == nil {
		return
	}
	for i := range s.Series {
		se := &s.Series[i]
		desc := c.descs[se.Metric.Name]
		var m prometheus.Metric
		var err error
		switch se.Metric.Type {
		case catalog.Counter:
			m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, se.Value, se.LabelValues...)
		case catalog.Histogram:
			buckets := make(map[float64]uint64, len(se.BucketCounts))
			for j, le := range se.Metric.Buckets {
				buckets[le] = se.BucketCounts[j]
			}
			m, err = prometheus.NewConstHistogram(desc, se.Count, se.Sum, buckets, se.LabelValues...)
		default:
			m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, se.Value, se.LabelValues...)
		}
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- prometheus.NewMetricWithTimestamp(s.Time, m)
	}
}

// MetricsHandler serves the last snapshot in the Prometheus text format or
// OpenMetrics, as the scraper asks, with each sample's gather time.
func MetricsHandler(g *Gatherer) http.Handler {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newSnapshotCollector(g))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
}
