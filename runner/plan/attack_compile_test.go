package plan

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/kod-forge/kod/runner/workflow"
)

// Compile builds every step of every matrix instance, each with its own
// copy of the workflow's [env], before it checks MaxSteps. A 50 KB file
// (64 combinations x 100 steps, 4000 env vars) made the server grow to
// 1.4 GB before failing the run with "6400 steps ... at most 200"; a 1 MiB
// file is tens of GB. The limit should be checked before building.
func TestAttackCompileChecksStepLimitBeforeBuilding(t *testing.T) {
	var vals []string
	for i := range 8 {
		vals = append(vals, fmt.Sprint(i))
	}
	wf := &workflow.Workflow{File: ".kod/workflows/ci.toml", Format: workflow.FormatTOML,
		Matrix: &workflow.Matrix{Axes: []workflow.MatrixAxis{{Name: "A", Values: vals}, {Name: "B", Values: vals}}}}
	for i := range 2000 {
		wf.Env = append(wf.Env, workflow.EnvVar{Name: fmt.Sprintf("V%05d", i), Value: "x"})
	}
	for i := range 100 {
		wf.Steps = append(wf.Steps, workflow.Step{Name: fmt.Sprintf("s%d", i), Run: "true"})
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Compile([]*workflow.Workflow{wf}, Trigger{Branch: "main", Commit: "0123456789abcdef"}, Defaults{Image: "x", MaxSteps: 200}, Inputs{})
	runtime.ReadMemStats(&after)
	var limit *StepLimitError
	if !errors.As(err, &limit) {
		t.Fatalf("err = %v, want a StepLimitError", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("Compile allocated %d MiB to refuse a plan over the step limit", alloc>>20)
	}
}
