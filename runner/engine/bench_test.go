package engine_test

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// benchExecute times Execute of the plan newPlan(id) returns against
// baseline (docker run --rm commands), both in each iteration, and
// reports the ratios (and, with floor, the ratio to what the engine needs
// for the same containers started the same way): "ratio" to the moment every step ended (Finished:
// when the runner stores the final state), "ratio-with-cleanup" to
// Execute's return (every container, volume and network removed).
func benchExecute(b *testing.B, newPlan func(run string) *plan.Plan, slots *engine.Slots, baseline, floor func(b *testing.B)) {
	d := engineBackend(b)
	instance := dockertest.NewID(b)
	b.Cleanup(func() { dockertest.Clean(b, d, instance) })
	var kod, clean, base, flo time.Duration
	var par int
	for b.Loop() {
		p := newPlan(dockertest.NewID(b))
		s := newSink()
		start := time.Now()
		var finished time.Duration
		out := engine.Execute(context.Background(), p, d, s, engine.Options{Instance: instance, StopGrace: time.Second, Slots: slots,
			Finished: func(engine.Outcome) { finished = time.Since(start) }})
		clean += time.Since(start)
		kod += finished
		if !out.Success {
			b.Fatalf("outcome %+v", out)
		}
		par = max(par, parallelism(s))
		start = time.Now()
		baseline(b)
		base += time.Since(start)
		if floor != nil {
			start = time.Now()
			floor(b)
			flo += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(kod.Seconds()/n, "s/kod")
	b.ReportMetric(clean.Seconds()/n, "s/kod-with-cleanup")
	b.ReportMetric(base.Seconds()/n, "s/baseline")
	b.ReportMetric(kod.Seconds()/base.Seconds(), "ratio")
	b.ReportMetric(clean.Seconds()/base.Seconds(), "ratio-with-cleanup")
	b.ReportMetric(float64(par), "parallel-steps")
	if floor != nil {
		b.ReportMetric(flo.Seconds()/n, "s/floor")
		b.ReportMetric(kod.Seconds()/flo.Seconds(), "ratio-to-floor")
	}
}

// parallelism is the most steps whose [Started, Ended] overlapped.
func parallelism(s *sink) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	s.mu.Lock()
	for _, ends := range s.ends {
		for _, e := range ends {
			if !e.Started.IsZero() {
				edges = append(edges, edge{e.Started, 1}, edge{e.Ended, -1})
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // an end before a start at the same instant
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}

func dockerRuns(n int, args ...string) func(b *testing.B) {
	return func(b *testing.B) {
		for range n {
			cmd := append([]string{"run", "--rm", dockertest.Image}, args...)
			if out, err := exec.Command("docker", cmd...).CombinedOutput(); err != nil {
				b.Fatalf("docker run: %v\n%s", err, out)
			}
		}
	}
}

// concurrentDockerRuns starts n `docker run --rm` at once with the
// options kod gives a step (its own network, docker-init, the workspace
// volume, no-new-privileges) and waits for all: the engine's floor for n
// parallel steps.
func concurrentDockerRuns(n int, args ...string) func(b *testing.B) {
	return func(b *testing.B) {
		id := dockertest.NewID(b)
		net, vol := "kod-bench-"+id, "kod-bench-"+id+"-ws"
		for _, c := range [][]string{{"network", "create", "--label", "dev.kod.bench=" + id, net}, {"volume", "create", "--label", "dev.kod.bench=" + id, vol}} {
			if out, err := exec.Command("docker", c...).CombinedOutput(); err != nil {
				b.Fatalf("docker %v: %v\n%s", c, err, out)
			}
		}
		defer exec.Command("docker", "volume", "rm", vol).Run()
		defer exec.Command("docker", "network", "rm", net).Run()
		errs := make(chan error, n)
		for range n {
			go func() {
				cmd := append([]string{"run", "--rm", "--network", net, "--init", "-v", vol + ":/workspace", "--security-opt", "no-new-privileges", dockertest.Image}, args...)
				out, err := exec.Command("docker", cmd...).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%v: %s", err, out)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				b.Fatalf("docker run: %v", err)
			}
		}
	}
}

// BenchmarkDockerSequential (a): a workflow of 5 sequential `true` steps
// against 5 sequential `docker run --rm` of the same image. Target: at
// most 1.0x.
func BenchmarkDockerSequential(b *testing.B) {
	benchExecute(b, func(run string) *plan.Plan {
		return newPlan(run, instance("ci", "ci.toml",
			shStep("1", "true"), shStep("2", "true", "1"), shStep("3", "true", "2"), shStep("4", "true", "3"), shStep("5", "true", "4")))
	}, nil, dockerRuns(5, "true"), nil)
}

// BenchmarkDockerParallelSleep (b): 4 independent steps of `sleep 2`
// (needs = []) against one `docker run --rm ... sleep 2`. Target: at most
// 1.3x. Four slots, so the server's default on a 2-core machine does not
// serialise them. The floor is 4 such containers started at once with
// docker run.
func BenchmarkDockerParallelSleep(b *testing.B) {
	benchExecute(b, func(run string) *plan.Plan {
		return newPlan(run, instance("ci", "ci.toml",
			shStep("1", "sleep 2"), shStep("2", "sleep 2"), shStep("3", "sleep 2"), shStep("4", "sleep 2")))
	}, engine.NewSlots(4), dockerRuns(1, "sleep", "2"), concurrentDockerRuns(4, "sleep", "2"))
}

// BenchmarkDockerMatrix (c): a 3x3 matrix (9 workflow instances, each its
// own workspace and network) of one `true` step against 9 sequential
// `docker run --rm`, with the server's default slots (one per CPU).
func BenchmarkDockerMatrix(b *testing.B) {
	benchExecute(b, func(run string) *plan.Plan {
		var wfs []*plan.Workflow
		for i := range 3 {
			for j := range 3 {
				key := fmt.Sprintf("ci-a%d-b%d", i, j)
				wfs = append(wfs, instance(key, "ci.toml", shStep("test", "true")))
			}
		}
		return newPlan(run, wfs...)
	}, engine.NewSlots(runtime.NumCPU()), dockerRuns(9, "true"), nil)
}
