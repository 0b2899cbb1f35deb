package metrics

import (
	"context"
	"io"
	"sync"

	"github.com/kod-forge/kod/sandbox"
)

// Backend wraps b so kod_step_containers_executing counts the steps it
// started and has not destroyed yet, and kod_sweep_removed_runs_total the
// runs whose leftovers Sweep removed. Every other method passes through.
func (m *Metrics) Backend(b sandbox.Backend) sandbox.Backend {
	return &observedBackend{Backend: b, gauge: m.stepsRunning.Add, swept: m.sweptRuns.Add, started: map[stepKey]struct{}{}}
}

type stepKey struct {
	run   string
	index int
}

type observedBackend struct {
	sandbox.Backend
	gauge   func(float64)
	swept   func(float64)
	mu      sync.Mutex
	started map[stepKey]struct{}
}

func (b *observedBackend) StartStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) error {
	err := b.Backend.StartStep(ctx, run, step, out)
	if err == nil {
		b.mu.Lock()
		k := stepKey{run.ID, step.Index}
		if _, ok := b.started[k]; !ok {
			b.started[k] = struct{}{}
			b.gauge(1)
		}
		b.mu.Unlock()
	}
	return err
}

func (b *observedBackend) DestroyStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	err := b.Backend.DestroyStep(ctx, run, step)
	b.forget(func(k stepKey) bool { return k == stepKey{run.ID, step.Index} })
	return err
}

func (b *observedBackend) DestroyRun(ctx context.Context, run *sandbox.RunSpec) error {
	err := b.Backend.DestroyRun(ctx, run)
	b.forget(func(k stepKey) bool { return k.run == run.ID })
	return err
}

// Sweep counts the runs whose leftovers the sweep removed.
func (b *observedBackend) Sweep(ctx context.Context, instance string, keep func(string) bool) ([]string, error) {
	removed, err := b.Backend.Sweep(ctx, instance, keep)
	b.swept(float64(len(removed)))
	return removed, err
}

// forget drops the started steps match selects: their containers are gone.
func (b *observedBackend) forget(match func(stepKey) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.started {
		if match(k) {
			delete(b.started, k)
			b.gauge(-1)
		}
	}
}

var _ sandbox.Backend = (*observedBackend)(nil)
