package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

type fakeStore struct {
	runs    []*forge.Run
	pending int
}

func (f *fakeStore) RunsWithStatus(_ context.Context, states ...forge.RunStatus) ([]*forge.Run, error) {
	var out []*forge.Run
	for _, r := range f.runs {
		for _, s := range states {
			if r.Status == s {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func (f *fakeStore) DueDeliveries(_ context.Context, _ forge.Millis, _ int, take func(repo, receiver string) bool) ([]*forge.Delivery, error) {
	for range f.pending {
		if take("r", "h") {
			panic("the collector must decline every delivery")
		}
	}
	return nil, nil
}

// TestHTTPLabelsAreRouteTemplates: requests are counted by route template
// and status, unknown paths as "unmatched", whatever the raw path holds.
func TestHTTPLabelsAreRouteTemplates(t *testing.T) {
	m := New(&fakeStore{})
	r := mux.NewRouter()
	r.Use(m.HTTP)
	r.HandleFunc("/repos/{name}/workflows/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	r.NotFoundHandler = m.HTTP(http.NotFoundHandler())
	for _, p := range []string{"/repos/secret-name/workflows/abc123", "/repos/other/workflows/x", "/nothing/here"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/repos/{name}/workflows/{id}", "GET", "418")); got != 2 {
		t.Errorf("templated route counted %v times, want 2", got)
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("unmatched", "GET", "404")); got != 1 {
		t.Errorf("unmatched counted %v times, want 1", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if strings.Contains(string(body), "secret-name") || strings.Contains(string(body), "abc123") {
		t.Errorf("a raw path reached the exposition:\n%s", body)
	}
}

// TestBackendCountsExecutingSteps: the gauge follows steps started and
// destroyed, once each, and DestroyRun clears what a run left.
func TestBackendCountsExecutingSteps(t *testing.T) {
	m := New(&fakeStore{})
	b := m.Backend(sandboxtest.New(func(context.Context, *sandbox.StepSpec, io.Writer) int { return 0 }))
	ctx := context.Background()
	run := &sandbox.RunSpec{ID: "r1", Instance: "i"}
	if err := b.SetupRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	s0, s1 := &sandbox.StepSpec{Index: 0, Image: "x"}, &sandbox.StepSpec{Index: 1, Image: "x"}
	for _, s := range []*sandbox.StepSpec{s0, s1} {
		if err := b.StartStep(ctx, run, s, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(m.stepsRunning); got != 2 {
		t.Errorf("two started: %v", got)
	}
	_ = b.DestroyStep(ctx, run, s0)
	_ = b.DestroyStep(ctx, run, s0) // idempotent
	if got := testutil.ToFloat64(m.stepsRunning); got != 1 {
		t.Errorf("one destroyed twice: %v", got)
	}
	_ = b.DestroyRun(ctx, run)
	if got := testutil.ToFloat64(m.stepsRunning); got != 0 {
		t.Errorf("after DestroyRun: %v", got)
	}
	// Leftovers of two runs swept: counted by run.
	for _, id := range []string{"r2", "r3"} {
		if err := b.SetupRun(ctx, &sandbox.RunSpec{ID: id, Instance: "i"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Sweep(ctx, "i", func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.sweptRuns); got != 2 {
		t.Errorf("swept runs: %v, want 2", got)
	}
}

// TestRunDoneAndStateGauges: a finished run moves the counters and
// histograms; the gauges are read from the store at scrape time.
func TestRunDoneAndStateGauges(t *testing.T) {
	store := &fakeStore{pending: 3, runs: []*forge.Run{{Status: forge.RunQueued, CreatedAt: 1}, {Status: forge.RunRunning}, {Status: forge.RunRunning}}}
	m := New(store)
	m.RunDone(context.Background(), &forge.Run{Status: forge.RunFailed, Trigger: forge.TriggerSchedule, CreatedAt: 1000, StartedAt: 3000, CompletedAt: 9000,
		Result: &forge.Result{Steps: []forge.StepResult{{Success: true, Duration: 1500}, {Success: false, Duration: 10}, {Skipped: true}}}})
	if got := testutil.ToFloat64(m.runsFinished.WithLabelValues("failed", "schedule")); got != 1 {
		t.Errorf("finished: %v", got)
	}
	want := `
# HELP kod_runs_active Workflow runs not finished, by status (queued, running).
# TYPE kod_runs_active gauge
kod_runs_active{status="queued"} 1
kod_runs_active{status="running"} 2
# HELP kod_webhook_deliveries_pending Webhook deliveries waiting for their next attempt (not being sent now).
# TYPE kod_webhook_deliveries_pending gauge
kod_webhook_deliveries_pending 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "kod_runs_active", "kod_webhook_deliveries_pending"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.stepDuration); n != 3 {
		t.Errorf("step duration series: %d, want success, failure and skipped", n)
	}
}

// BenchmarkHTTPMiddleware times a templated route with and without the
// metrics middleware in the same run: the ratio is the cost of counting.
func BenchmarkHTTPMiddleware(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		name := "baseline"
		if withMetrics {
			name = "metrics"
		}
		b.Run(name, func(b *testing.B) {
			r := mux.NewRouter()
			if withMetrics {
				r.Use(New(&fakeStore{}).HTTP)
			}
			r.HandleFunc("/repos/{name}/workflows/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
			req := httptest.NewRequest("GET", "/repos/app/workflows/abc", nil)
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
