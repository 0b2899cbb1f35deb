package plan

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/kod-forge/kod/runner/workflow"
)

// Compile checks MaxSteps before it builds any step: it once built every
// step of every matrix instance, each with its own copy of the workflow's
// [env], first; a 50 KB file (64 combinations x 100 steps, 4000 env vars)
// made the server grow to 1.4 GB before failing the run.
func TestCompileChecksStepLimitBeforeBuilding(t *testing.T) {
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
	if limit.Steps != 6400 || limit.Instances != 64 || limit.Max != 200 {
		t.Errorf("limit error = %+v, want 6400 steps in 64 instances, at most 200", limit)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Compile allocated %d MiB to refuse a plan over the step limit", alloc>>20)
	}
}

// Steps that add nothing to their workflow instance's env share one env
// slice (clipped, so appending to one copies), and the env stays right.
func TestCompileSharesWorkflowEnv(t *testing.T) {
	wf := &workflow.Workflow{File: ".kod/workflows/ci.toml", Format: workflow.FormatTOML,
		Matrix: &workflow.Matrix{Axes: []workflow.MatrixAxis{{Name: "A", Values: []string{"1", "2"}}}},
		Env:    []workflow.EnvVar{{Name: "X", Value: "1"}, {Name: "Y", Value: "2"}, {Name: "X", Value: "3"}}}
	wf.Steps = []workflow.Step{{Name: "a", Run: "true"}, {Name: "b", Run: "true"}, {Name: "c", Run: "true", Env: []workflow.EnvVar{{Name: "Y", Value: "s"}}}}
	p, err := Compile([]*workflow.Workflow{wf}, Trigger{Branch: "main", Commit: "0123456789abcdef"}, Defaults{Image: "x", MaxSteps: 200}, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	for i, inst := range p.Workflows {
		want := fmt.Sprintf("[{Y 2} {X 3} {MATRIX_A %d}]", i+1)
		for _, s := range inst.Steps[:2] {
			if got := fmt.Sprint(s.Env); got != want {
				t.Errorf("%s env = %s, want %s", s.ID, got, want)
			}
		}
		if &inst.Steps[0].Env[0] != &inst.Steps[1].Env[0] || cap(inst.Steps[0].Env) != len(inst.Steps[0].Env) {
			t.Errorf("%s: steps without env of their own do not share a clipped env", inst.Key)
		}
		if got, want := fmt.Sprint(inst.Steps[2].Env), fmt.Sprintf("[{X 3} {MATRIX_A %d} {Y s}]", i+1); got != want {
			t.Errorf("step c env = %s, want %s", got, want)
		}
	}
	if &p.Workflows[0].Steps[0].Env[0] == &p.Workflows[1].Steps[0].Env[0] {
		t.Error("two matrix instances share one env")
	}
}
