package runner_test

import (
	"archive/tar"
	"context"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// staticSource serves one workflow file and a one-file tree for any commit.
type staticSource struct{ workflow string }

func (s staticSource) WorkflowFiles(context.Context, string, string) ([]runner.File, error) {
	return []runner.File{{Path: ".kod/workflows/ci.toml", Data: []byte(s.workflow)}}, nil
}

func (s staticSource) Archive(_ context.Context, _, _ string, w io.Writer) error {
	tw := tar.NewWriter(w)
	body := []byte("# bench\n")
	if err := tw.WriteHeader(&tar.Header{Name: "README.md", Mode: 0o644, Size: int64(len(body))}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	return tw.Close()
}

const fiveTrueSteps = `
[[steps]]
name = "1"
run = "true"
[[steps]]
name = "2"
run = "true"
[[steps]]
name = "3"
run = "true"
[[steps]]
name = "4"
run = "true"
[[steps]]
name = "5"
run = "true"
`

// BenchmarkStepOverhead times a 5-step workflow of `true` against 5
// sequential `docker run --rm <image> true`, in the same run, and reports
// the ratios. "ratio" is queue to final state stored (what a user waits
// for: workspace, network, five step containers); "ratio-with-cleanup"
// also waits until the run's volume and network are gone. Target: at most
// 1.3x.
func BenchmarkStepOverhead(b *testing.B) {
	r, _, instance, done := engineRunner(b, runner.Config{}, staticSource{fiveTrueSteps})
	ctx := context.Background()
	var kod, clean, baseline time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := r.Enqueue(ctx, runner.Request{Repo: "repo", Branch: "main", Commit: "0123456789abcdef0123456789abcdef01234567", Trigger: forge.TriggerManual}); err != nil {
			b.Fatal(err)
		}
		run := <-done
		kod += time.Since(start)
		if run.Status != forge.RunCompleted || len(run.Result.Steps) != 5 {
			b.Fatalf("run %s: %q %+v", run.Status, run.Error, run.Result)
		}
		for len(dockertest.Leftovers(b, instance)) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		clean += time.Since(start)
		start = time.Now()
		for range 5 {
			if out, err := exec.Command("docker", "run", "--rm", dockertest.Image, "true").CombinedOutput(); err != nil {
				b.Fatalf("docker run: %v\n%s", err, out)
			}
		}
		baseline += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(kod.Seconds()/n, "s/kod-run")
	b.ReportMetric(clean.Seconds()/n, "s/kod-run-with-cleanup")
	b.ReportMetric(baseline.Seconds()/n, "s/5-docker-run")
	b.ReportMetric(kod.Seconds()/baseline.Seconds(), "ratio")
	b.ReportMetric(clean.Seconds()/baseline.Seconds(), "ratio-with-cleanup")
}
