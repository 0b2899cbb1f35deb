// Package metrics owns kod's Prometheus registry and the series it
// exports at GET /metrics (text exposition format). The parts it observes
// never import Prometheus: they get small callbacks at construction
// (runner.Config.OnRunDone, webhook.Config.OnAttempt, gitsvc.Git.OnServe,
// sshd.Config.OnConn), a wrapped sandbox.Backend, or an HTTP
// middleware; gauges of stored state (runs queued or running, deliveries
// pending) are read from the store when scraped.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kod-forge/kod/forge"
)

// Store is what scrapes read: the active runs and the webhook delivery
// queue.
type Store interface {
	RunsWithStatus(ctx context.Context, states ...forge.RunStatus) ([]*forge.Run, error)
	DueDeliveries(ctx context.Context, now forge.Millis, limit int, take func(repo, receiver string) bool) ([]*forge.Delivery, error)
}

// Metrics is the registry and every kod series. Create with New; its
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	runsFinished  *prometheus.CounterVec   // result, trigger
	runDuration   *prometheus.HistogramVec // result
	queueWait     prometheus.Histogram
	stepDuration  *prometheus.HistogramVec // result
	stepsRunning  prometheus.Gauge
	sweptRuns     prometheus.Counter
	deliveries    *prometheus.CounterVec // outcome
	gitOps        *prometheus.CounterVec // transport, service
	httpRequests  *prometheus.CounterVec // route, method, code
	httpDuration  *prometheus.HistogramVec
	sshConns      prometheus.Counter
	sshConnsOpen  prometheus.Gauge
	scrapeTimeout time.Duration
}

// durationBuckets span a one-second step to a two-hour run, in seconds.
var durationBuckets = []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}

// New registers every series, the Go runtime and process collectors and
// kod_build_info{version, goversion, revision}. store is read at scrape
// time for the gauges of stored state.
func New(store Store) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), scrapeTimeout: 5 * time.Second}
	f := factory{m.reg}
	m.runsFinished = f.counterVec("kod_runs_finished_total",
		"Workflow runs that reached a final state, by result (completed, failed, cancelled) and trigger (push, manual, schedule).", "result", "trigger")
	m.runDuration = f.histogramVec("kod_run_duration_seconds",
		"Time from a run's start to its end, by result.", durationBuckets, "result")
	m.queueWait = f.histogram("kod_run_queue_wait_seconds",
		"Time a run waited in the queue before it started, observed when the run ends.",
		[]float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600})
	m.stepDuration = f.histogramVec("kod_step_duration_seconds",
		"Duration of a workflow step, by result (success, failure, skipped), observed when its run ends.", durationBuckets, "result")
	m.stepsRunning = f.gauge("kod_step_containers_executing", "Step containers started and not yet removed.")
	m.sweptRuns = f.counter("kod_sweep_removed_runs_total",
		"Runs whose leftover containers, volumes or networks a sweep removed (at start after a crash, or periodically: then a run's own clean-up had failed).")
	m.deliveries = f.counterVec("kod_webhook_deliveries_total",
		"Webhook delivery attempts by outcome: success, retry (failed, another attempt is scheduled) or failed (no attempt left).", "outcome")
	m.gitOps = f.counterVec("kod_git_operations_total",
		"Git protocol requests served, by transport (http, ssh) and service (git-upload-pack, git-receive-pack).", "transport", "service")
	m.httpRequests = f.counterVec("kod_http_requests_total",
		"HTTP requests by route template (never the raw path), method and status code.", "route", "method", "code")
	m.httpDuration = f.histogramVec("kod_http_request_duration_seconds",
		"HTTP request latency to the end of the response, by route template and method.", prometheus.DefBuckets, "route", "method")
	m.sshConns = f.counter("kod_ssh_connections_total", "SSH connections accepted.")
	m.sshConnsOpen = f.gauge("kod_ssh_connections_open", "SSH connections open now.")
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
		&stateCollector{m: m, store: store},
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// GitOp counts one git protocol request (gitsvc.Git.OnServe).
func (m *Metrics) GitOp(transport, service string) {
	m.gitOps.WithLabelValues(transport, service).Inc()
}

// SSHConn counts an accepted SSH connection and returns the func to call
// when it closes (gitsvc.SSHConfig.OnConn).
func (m *Metrics) SSHConn() (closed func()) {
	m.sshConns.Inc()
	m.sshConnsOpen.Inc()
	return m.sshConnsOpen.Dec
}

// DeliveryAttempt counts one webhook delivery attempt by its outcome
// (webhook.Config.OnAttempt): "success", "retry" or "failed".
func (m *Metrics) DeliveryAttempt(outcome string) {
	m.deliveries.WithLabelValues(outcome).Inc()
}

func buildInfo() prometheus.Collector {
	version, revision := forge.Version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "kod_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}

// factory registers series as it makes them.
type factory struct{ reg *prometheus.Registry }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
