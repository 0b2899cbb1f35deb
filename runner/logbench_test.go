package runner_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// Producers of 100 MB of output: "yes" prints 80-character lines as fast
// as the pipe takes them (500 MB/s or more here: the worst case for log
// capture); "seq" prints 12.5 million numbered lines through stdio, the
// pace of a chatty program (about 40 MB/s).
var producers = []struct{ name, script string }{
	{"yes", `yes 'kod log throughput benchmark: a line of build output, eighty characters long' | head -c 100000000`},
	{"seq", `seq 12500000 | head -c 100000000`},
}

// BenchmarkLogThroughput runs, for each producer in the same run of the
// benchmark, a step printing 100 MB and the same step writing to
// /dev/null (same image, limits and shell), and reports the ratio of their
// step durations (target: at most 1.3x) and the growth of this process's
// resident memory (VmRSS, sampled every 5 ms) while the loud step runs.
// "ratio-engine-floor" is the same 100 MB through the Docker backend into
// io.Discard against /dev/null: what the engine's attach stream costs
// before kod stores a byte.
func BenchmarkLogThroughput(b *testing.B) {
	for _, p := range producers {
		b.Run(p.name, func(b *testing.B) { benchLogThroughput(b, p.script) })
	}
}

func benchLogThroughput(b *testing.B, print100MB string) {
	src := filesSource{
		".kod/workflows/loud.toml":  "[[steps]]\nname = \"loud\"\nrun = \"" + print100MB + "\"\n",
		".kod/workflows/quiet.toml": "[[steps]]\nname = \"quiet\"\nrun = \"" + print100MB + " > /dev/null\"\n",
	}
	limits := sandbox.Limits{MemoryBytes: 2 << 30, NanoCPUs: 2e9, PIDs: 1024}
	r, _, _, done := engineRunner(b, runner.Config{Limits: limits}, src)
	d := dockertest.Require(b)
	floorRun := &sandbox.RunSpec{ID: dockertest.NewID(b), Instance: dockertest.NewID(b), Network: sandbox.NetworkNone}
	b.Cleanup(func() { dockertest.Clean(b, d, floorRun.Instance) })
	if err := d.SetupRun(context.Background(), floorRun); err != nil {
		b.Fatal(err)
	}
	runStep := func(file string) *forge.Run {
		runFile(b, r, file)
		run := <-done
		if run.Status != forge.RunCompleted {
			b.Fatalf("%s: %s %q %+v", file, run.Status, run.Error, run.Result)
		}
		return run
	}
	floorIdx := 0
	floorStep := func(script string) time.Duration {
		step := &sandbox.StepSpec{Index: floorIdx, Image: dockertest.Image, Pull: sandbox.PullNever, Command: []string{"/bin/sh", "-c", script}, Limits: limits}
		floorIdx++
		start := time.Now()
		if err := d.StartStep(context.Background(), floorRun, step, io.Discard); err != nil {
			b.Fatal(err)
		}
		if _, err := d.WaitStep(context.Background(), floorRun, step); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		_ = d.DestroyStep(context.Background(), floorRun, step)
		return took
	}
	runStep(".kod/workflows/quiet.toml") // warm up
	base := rssBytes(b)
	var peak atomic.Int64
	var loud, quiet, floorLoud, floorQuiet time.Duration
	for b.Loop() {
		stop := sampleRSS(b, &peak)
		run := runStep(".kod/workflows/loud.toml")
		stop()
		loud += time.Duration(run.Result.Steps[0].Duration) * time.Millisecond
		if out := run.Result.Steps[0].Output; len(out) < 60<<10 {
			b.Fatalf("loud step output kept: %d bytes", len(out))
		}
		run = runStep(".kod/workflows/quiet.toml")
		quiet += time.Duration(run.Result.Steps[0].Duration) * time.Millisecond
		floorLoud += floorStep(print100MB)
		floorQuiet += floorStep(print100MB + " >/dev/null")
	}
	n := float64(b.N)
	b.ReportMetric(loud.Seconds()/n, "s/step-100MB")
	b.ReportMetric(quiet.Seconds()/n, "s/step-devnull")
	b.ReportMetric(loud.Seconds()/quiet.Seconds(), "ratio")
	b.ReportMetric(floorLoud.Seconds()/floorQuiet.Seconds(), "ratio-engine-floor")
	b.ReportMetric(float64(peak.Load()-base)/(1<<20), "MiB-rss-growth")
}

// rssBytes reads VmRSS of this process.
func rssBytes(tb testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte("kB")))), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// sampleRSS records the highest VmRSS into peak every 5 ms until stopped.
func sampleRSS(tb testing.TB, peak *atomic.Int64) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rssBytes(tb); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}
