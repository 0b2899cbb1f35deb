package forge

import (
	"strings"
	"testing"
)

func TestCombineCommitRuns(t *testing.T) {
	const a, b = ".kod/workflows/a.toml", ".kod/workflows/b.toml"
	all := []string{a, b}
	steps := func(okA, okB bool) *Result {
		return &Result{Steps: []StepResult{{Workflow: a, Success: okA}, {Workflow: b, Success: okB}}}
	}
	tests := []struct {
		name   string
		runs   []*Run
		state  CommitState
		picked string // ids of picked runs, newest first
	}{
		{"no runs", nil, StateNone, ""},
		{"all passed", []*Run{{ID: "1", Seq: 1, Status: RunCompleted}}, StateSuccess, "1"},
		{"one file failed", []*Run{{ID: "1", Seq: 1, Status: RunFailed, Result: steps(true, false)}}, StateFailure, "1"},
		{"queued", []*Run{{ID: "1", Seq: 1, Status: RunQueued}}, StatePending, "1"},
		{"failure beats pending", []*Run{
			{ID: "1", Seq: 1, Status: RunFailed, Result: steps(true, false)},
			{ID: "2", Seq: 2, Status: RunRunning, Files: []string{a}},
		}, StateFailure, "2,1"},
		{"newer run of the failed file passes", []*Run{
			{ID: "1", Seq: 1, Status: RunFailed, Result: steps(true, false)},
			{ID: "2", Seq: 2, Status: RunCompleted, Files: []string{b}},
		}, StateSuccess, "2,1"},
		{"superseded entirely", []*Run{
			{ID: "1", Seq: 1, Status: RunFailed, Result: steps(false, false)},
			{ID: "2", Seq: 2, Status: RunCompleted},
		}, StateSuccess, "2"},
		{"run-level error fails every file", []*Run{{ID: "1", Seq: 1, Status: RunFailed, Error: "invalid workflow", Result: &Result{}}}, StateFailure, "1"},
		{"cancelled", []*Run{{ID: "1", Seq: 1, Status: RunCancelled, Result: steps(true, true)}}, StateFailure, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, picked, files := CombineCommitRuns(tt.runs, all)
			var ids []string
			for _, r := range picked {
				ids = append(ids, r.ID)
				if len(files[r.ID]) == 0 {
					t.Errorf("run %s picked without files", r.ID)
				}
			}
			if state != tt.state || strings.Join(ids, ",") != tt.picked {
				t.Errorf("got %s %v, want %s %s", state, ids, tt.state, tt.picked)
			}
		})
	}
}
