package exporter

import (
	_ "github.com/OpenPrinting/goipp"
	_ "github.com/gosnmp/gosnmp"
	_ "github.com/influxdata/telegraf/metric"
	_ "github.com/influxdata/telegraf/plugins/serializers/influx"
	_ "github.com/prometheus-community/pro-bing"
	_ "github.com/robbiet480/go.nut"
)
