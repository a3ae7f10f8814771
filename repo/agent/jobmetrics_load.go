package agent

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Load continues from the job metrics of an earlier run, in the Prometheus
// text format (the node_exporter textfile a one-shot command wrote): the
// gauges take the values read and the counters add them, so that a run that
// fails keeps the last success of the runs before it and the byte counters
// keep counting. Other metric families are ignored; malformed input is an
// error saying what is wrong.
func (m *JobMetrics) Load(r io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return err
	}
	gauges := map[string]*prometheus.GaugeVec{
		"memento_job_last_success_timestamp_seconds": m.lastSuccess,
		"memento_job_last_failure_timestamp_seconds": m.lastFailure,
		"memento_job_duration_seconds":               m.duration,
	}
	counters := map[string]*prometheus.CounterVec{
		"memento_job_bytes_read_total":  m.bytesRead,
		"memento_job_bytes_added_total": m.bytesAdded,
	}
	for name, f := range fams {
		g, c := gauges[name], counters[name]
		if g == nil && c == nil {
			continue
		}
		if (g != nil && f.GetType() != dto.MetricType_GAUGE) || (c != nil && f.GetType() != dto.MetricType_COUNTER) {
			return fmt.Errorf("metric %s: type %s", name, f.GetType())
		}
		for _, mt := range f.GetMetric() {
			var space, task string
			var n int
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "space":
					space, n = l.GetValue(), n+1
				case "task":
					task, n = l.GetValue(), n+1
				}
			}
			if n != 2 || len(mt.GetLabel()) != 2 {
				return fmt.Errorf("metric %s: want exactly the labels space and task", name)
			}
			if g != nil {
				g.WithLabelValues(space, task).Set(mt.GetGauge().GetValue())
			} else if v := mt.GetCounter().GetValue(); v > 0 {
				c.WithLabelValues(space, task).Add(v)
			}
		}
	}
	return nil
}
