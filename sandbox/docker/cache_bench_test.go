package docker_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// BenchmarkCacheRestore measures what a cache costs the second run of a
// workflow whose step filled 200 MB into it: restoring the cache (from its
// saved layers) plus a step `true` with it mounted, against the same step
// with a plain volume already holding the 200 MB mounted at the same path
// (`docker run -v vol:/cache`). The two alternate in each iteration;
// "ratio" is the first total over the second.
//
//	go test -run X -bench CacheRestore -benchtime 10x ./sandbox/docker/
func BenchmarkCacheRestore(b *testing.B) {
	d := dockertest.Require(b)
	ctx := context.Background()
	instance := dockertest.NewID(b)
	b.Cleanup(func() {
		_, _ = d.PruneCaches(context.Background(), instance, func(string) bool { return false })
		dockertest.Clean(b, d, instance)
	})
	newRun := func() *sandbox.RunSpec {
		run := &sandbox.RunSpec{ID: dockertest.NewID(b), Instance: instance, Network: sandbox.NetworkNone}
		if err := d.SetupRun(ctx, run); err != nil {
			b.Fatal(err)
		}
		return run
	}
	step := func(run *sandbox.RunSpec, index int, script string, cache int) {
		st := &sandbox.StepSpec{Index: index, Image: dockertest.Image, Pull: sandbox.PullNever,
			Command: []string{"/bin/sh", "-c", script}, Caches: []sandbox.CacheMount{{Index: cache, Path: "/cache"}}}
		if err := d.StartStep(ctx, run, st, io.Discard); err != nil {
			b.Fatal(err)
		}
		if s, err := d.WaitStep(ctx, run, st); err != nil || s.ExitCode != 0 {
			b.Fatalf("step: %v %v", s, err)
		}
		if err := d.DestroyStep(ctx, run, st); err != nil {
			b.Fatal(err)
		}
	}
	const fill = "dd if=/dev/urandom of=/cache/blob bs=1M count=200 2>/dev/null && mkdir -p /cache/d && for i in $(seq 500); do echo $i > /cache/d/$i; done"

	// The first run fills the cache and saves it.
	first := newRun()
	c := &sandbox.CacheSpec{Index: 0, Path: "/cache", Image: dockertest.Image}
	if err := d.RestoreCache(ctx, first, c); err != nil {
		b.Fatal(err)
	}
	step(first, 0, fill, 0)
	saved, err := d.SaveCache(ctx, first, c)
	if err != nil || saved.Size < 200<<20 {
		b.Fatalf("save: %+v %v", saved, err)
	}
	_ = d.DestroyRun(ctx, first)

	// The baseline: a run whose volume at /cache already holds the same.
	plain := newRun()
	defer d.DestroyRun(context.Background(), plain)
	// The step mounts the volume named like a cache's working copy: a plain
	// volume of the run (the mount creates it), filled once.
	step(plain, 0, fill, 0)
	// The measured side runs in a run of its own that has run a step too,
	// each iteration with a fresh cache (index) restored from the layers.
	other := newRun()
	defer d.DestroyRun(context.Background(), other)
	step(other, 0, "true", 0)

	var restored, baseline, restoreOnly time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		step(plain, 1+i, "true", 0)
		baseline += time.Since(t0)

		rc := &sandbox.CacheSpec{Index: 1 + i, Path: "/cache", From: saved.Layers, Image: dockertest.Image}
		t0 = time.Now()
		if err := d.RestoreCache(ctx, other, rc); err != nil {
			b.Fatal(err)
		}
		restoreOnly += time.Since(t0)
		step(other, 1+i, "true", 1+i)
		restored += time.Since(t0)
		b.StopTimer()
		if err := d.DiscardCache(ctx, other, rc); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(restored.Milliseconds())/float64(b.N), "restore+step-ms")
	b.ReportMetric(float64(baseline.Milliseconds())/float64(b.N), "plain-step-ms")
	b.ReportMetric(float64(restoreOnly.Milliseconds())/float64(b.N), "restore-ms")
	b.ReportMetric(float64(restored)/float64(baseline), "ratio")
}
