package engine

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds of the request latency histogram:
// from 100 µs (a short route on a city graph) to 30 s (the default request
// timeout), about three per decade.
var latencyBuckets = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second,
}

// statusSlots is the number of status code counters per endpoint: one per
// code 100-599, so counting is one atomic add with no lookup.
const statusSlots = 500

// metrics are the server's Prometheus counters. Every counter is an
// atomic in a flat slice indexed by endpoint, so recording a request takes
// a few uncontended atomic adds and no lock.
type metrics struct {
	labels    []endpointLabel // per endpoint, the last one for unmatched requests
	unmatched int             // index of the unmatched pseudo-endpoint

	requests []atomic.Uint64 // endpoint*statusSlots + status-100
	buckets  []atomic.Uint64 // endpoint*(len(latencyBuckets)+1) + bucket (not cumulative)
	sumNanos []atomic.Uint64 // per endpoint
	inflight atomic.Int64
}

type endpointLabel struct{ method, pattern string }

func newMetrics(routes []endpoint) *metrics {
	m := &metrics{}
	for _, e := range routes {
		m.labels = append(m.labels, endpointLabel{e.Method, e.Pattern})
	}
	m.unmatched = len(m.labels)
	m.labels = append(m.labels, endpointLabel{"", "unmatched"})
	n := len(m.labels)
	m.requests = make([]atomic.Uint64, n*statusSlots)
	m.buckets = make([]atomic.Uint64, n*(len(latencyBuckets)+1))
	m.sumNanos = make([]atomic.Uint64, n)
	return m
}

// observe records one answered request of endpoint i.
func (m *metrics) observe(i, status int, d time.Duration) {
	if status < 100 || status >= 100+statusSlots {
		status = 500
	}
	m.requests[i*statusSlots+status-100].Add(1)
	b := len(latencyBuckets)
	for k, ub := range latencyBuckets {
		if d <= ub {
			b = k
			break
		}
	}
	m.buckets[i*(len(latencyBuckets)+1)+b].Add(1)
	if d > 0 {
		m.sumNanos[i].Add(uint64(d))
	}
}

// appendText appends the metrics in the Prometheus text exposition format
// (version 0.0.4): request counts by endpoint, method and status code,
// latency histograms per endpoint, requests in flight, and a few Go
// runtime figures.
func (m *metrics) appendText(b []byte) []byte {
	b = append(b, "# HELP lastmile_http_requests_total HTTP requests answered, by endpoint pattern, method and status code.\n"...)
	b = append(b, "# TYPE lastmile_http_requests_total counter\n"...)
	for i, l := range m.labels {
		for c := range statusSlots {
			v := m.requests[i*statusSlots+c].Load()
			if v == 0 {
				continue
			}
			b = append(b, "lastmile_http_requests_total"...)
			b = appendLabels(b, l, "code", strconv.Itoa(c+100))
			b = append(b, ' ')
			b = strconv.AppendUint(b, v, 10)
			b = append(b, '\n')
		}
	}
	b = append(b, "# HELP lastmile_http_request_duration_seconds Time from routing a request to its answer being ready, by endpoint pattern.\n"...)
	b = append(b, "# TYPE lastmile_http_request_duration_seconds histogram\n"...)
	nb := len(latencyBuckets) + 1
	for i, l := range m.labels {
		var cum uint64
		for k := range nb {
			cum += m.buckets[i*nb+k].Load()
			le := "+Inf"
			if k < len(latencyBuckets) {
				le = strconv.FormatFloat(latencyBuckets[k].Seconds(), 'g', -1, 64)
			}
			b = append(b, "lastmile_http_request_duration_seconds_bucket"...)
			b = appendLabels(b, l, "le", le)
			b = append(b, ' ')
			b = strconv.AppendUint(b, cum, 10)
			b = append(b, '\n')
		}
		b = append(b, "lastmile_http_request_duration_seconds_sum"...)
		b = appendLabels(b, l, "", "")
		b = append(b, ' ')
		b = strconv.AppendFloat(b, float64(m.sumNanos[i].Load())/1e9, 'g', -1, 64)
		b = append(b, '\n')
		b = append(b, "lastmile_http_request_duration_seconds_count"...)
		b = appendLabels(b, l, "", "")
		b = append(b, ' ')
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = append(b, "# HELP lastmile_http_requests_in_flight Requests being handled now.\n"...)
	b = append(b, "# TYPE lastmile_http_requests_in_flight gauge\n"...)
	b = append(b, "lastmile_http_requests_in_flight "...)
	b = strconv.AppendInt(b, m.inflight.Load(), 10)
	b = append(b, '\n')

	samples := []rtmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	rtmetrics.Read(samples)
	b = append(b, "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines "...)
	b = strconv.AppendInt(b, int64(runtime.NumGoroutine()), 10)
	b = append(b, '\n')
	if v := samples[0].Value; v.Kind() == rtmetrics.KindUint64 {
		b = append(b, "# HELP go_heap_objects_bytes Memory occupied by live and not yet swept heap objects.\n# TYPE go_heap_objects_bytes gauge\ngo_heap_objects_bytes "...)
		b = strconv.AppendUint(b, v.Uint64(), 10)
		b = append(b, '\n')
	}
	if v := samples[1].Value; v.Kind() == rtmetrics.KindUint64 {
		b = append(b, "# HELP go_gc_cycles_total Completed garbage collection cycles.\n# TYPE go_gc_cycles_total counter\ngo_gc_cycles_total "...)
		b = strconv.AppendUint(b, v.Uint64(), 10)
		b = append(b, '\n')
	}
	return b
}

// appendLabels appends {endpoint="...",method="..."[,k="v"]}.
func appendLabels(b []byte, l endpointLabel, k, v string) []byte {
	b = append(b, `{endpoint="`...)
	b = appendLabelValue(b, l.pattern)
	b = append(b, '"')
	if l.method != "" {
		b = append(b, `,method="`...)
		b = appendLabelValue(b, l.method)
		b = append(b, '"')
	}
	if k != "" {
		b = append(b, ',')
		b = append(b, k...)
		b = append(b, `="`...)
		b = appendLabelValue(b, v)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendLabelValue escapes backslash, double quote and newline as the
// exposition format requires.
func appendLabelValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendMetric appends one Prometheus sample of a metric without labels,
// with its HELP and TYPE lines.
func appendMetric(b []byte, name, typ, help string, v float64) []byte {
	b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" "+typ+"\n"+name+" "...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '\n')
}
