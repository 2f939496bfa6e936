package exporter

import (
	"sort"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
)

// AppendWriteRequest appends the snapshots as one Prometheus remote write
// request (protobuf, not yet compressed) to dst. Labels are sorted by name,
// __name__ first, as the protocol asks.
func AppendWriteRequest(dst []byte, snaps ...*Snapshot) []byte {
	var wr prompb.WriteRequest
	n := 0
	for _, s := range snaps {
		n += s.Len()
	}
	wr.Timeseries = make([]prompb.TimeSeries, 0, n)
	labels := make([]prompb.Label, 0, n*4)
	samples := make([]prompb.Sample, 0, n)
	for _, s := range snaps {
		ts := s.Time.UnixMilli()
		s.Each(func(name string, ls []Label, v float64) {
			start := len(labels)
			labels = append(labels, prompb.Label{Name: "__name__", Value: name})
			for _, l := range ls {
				labels = append(labels, prompb.Label{Name: l.Name, Value: l.Value})
			}
			own := labels[start+1:]
			sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
			samples = append(samples, prompb.Sample{Value: v, Timestamp: ts})
			wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{Labels: labels[start:len(labels):len(labels)], Samples: samples[len(samples)-1:]})
		})
	}
	return wr.MarshalProtobuf(dst)
}
