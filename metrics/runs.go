package metrics

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kod-forge/kod/forge"
)

// RunDone observes a run that reached a final state (runner.OnRunDone):
// the finished counter, the run's duration and queue wait (when it
// started), and the duration of each of its steps.
func (m *Metrics) RunDone(_ context.Context, run *forge.Run) {
	trigger := string(run.Trigger)
	if trigger == "" {
		trigger = string(forge.TriggerPush)
	}
	result := string(run.Status)
	m.runsFinished.WithLabelValues(result, trigger).Inc()
	if run.StartedAt > 0 {
		m.queueWait.Observe(seconds(run.StartedAt - run.CreatedAt))
		if run.CompletedAt >= run.StartedAt {
			m.runDuration.WithLabelValues(result).Observe(seconds(run.CompletedAt - run.StartedAt))
		}
	}
	if run.Result == nil {
		return
	}
	for _, st := range run.Result.Steps {
		if !st.Ran() {
			continue // planned, never started (cancelled, or the run failed first)
		}
		outcome := "success"
		switch {
		case st.Skipped:
			outcome = "skipped"
		case !st.Success:
			outcome = "failure"
		}
		m.stepDuration.WithLabelValues(outcome).Observe(float64(st.Duration) / 1000)
	}
}

func seconds(ms forge.Millis) float64 { return float64(max(ms, 0)) / 1000 }

// stateCollector reads the gauges of stored state at scrape time, so they
// are right after a restart and never drift from the records.
type stateCollector struct {
	m     *Metrics
	store Store
}

var (
	runsActiveDesc = prometheus.NewDesc("kod_runs_active",
		"Workflow runs not finished, by status (queued, running).", []string{"status"}, nil)
	oldestQueuedDesc = prometheus.NewDesc("kod_runs_oldest_queued_seconds",
		"How long the oldest queued run has waited; 0 when none is queued.", nil, nil)
	deliveriesPendingDesc = prometheus.NewDesc("kod_webhook_deliveries_pending",
		"Webhook deliveries waiting for their next attempt (not being sent now).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsActiveDesc
	ch <- oldestQueuedDesc
	ch <- deliveriesPendingDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.scrapeTimeout)
	defer cancel()
	runs, err := c.store.RunsWithStatus(ctx, forge.RunQueued, forge.RunRunning)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runsActiveDesc, err)
	} else {
		counts := map[forge.RunStatus]int{}
		oldest := forge.Millis(0)
		for _, r := range runs {
			counts[r.Status]++
			if r.Status == forge.RunQueued && (oldest == 0 || r.CreatedAt < oldest) {
				oldest = r.CreatedAt
			}
		}
		for _, s := range []forge.RunStatus{forge.RunQueued, forge.RunRunning} {
			ch <- prometheus.MustNewConstMetric(runsActiveDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
		wait := 0.0
		if oldest > 0 {
			wait = seconds(time.Now().UnixMilli() - oldest)
		}
		ch <- prometheus.MustNewConstMetric(oldestQueuedDesc, prometheus.GaugeValue, wait)
	}
	pending := 0
	// take counts and declines every entry, so nothing is decoded.
	_, err = c.store.DueDeliveries(ctx, math.MaxInt64, 0, func(string, string) bool { pending++; return false })
	if err != nil {
		ch <- prometheus.NewInvalidMetric(deliveriesPendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(deliveriesPendingDesc, prometheus.GaugeValue, float64(pending))
}
