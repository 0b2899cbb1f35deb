package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
)

// Limits that keep one run record small whatever a repository holds: every
// listing of runs (GET .../workflows, /workflows/status) decodes records,
// and a record is rewritten in full each time a step ends.
const (
	// MaxRunFiles is the largest number of workflow files one run executes
	// (a trigger's `files`, or the files a push selects).
	MaxRunFiles = 100
	// MaxRunSteps is the largest number of steps one run executes, over all
	// its workflow files (each file has at most workflow.MaxSteps).
	MaxRunSteps = 200
	// DefaultOutputBudget is the default of Config.OutputBudget: bytes of
	// step output (result.steps[].output) one run record keeps in all.
	DefaultOutputBudget = 1 << 20
	// ShortOutput is the tail a step keeps in the record once its run's
	// output budget is spent, bytes.
	ShortOutput = 4 << 10
)

// outputAllowance returns how many bytes of output the next step of a run
// may keep in its record, given the bytes its earlier steps keep (used):
// OutputCap while the budget lasts, then what is left of it, but never
// less than ShortOutput. The log files are not affected.
func (r *Runner) outputAllowance(used int) int {
	left := r.cfg.OutputBudget - used
	if left >= r.cfg.OutputCap {
		return r.cfg.OutputCap
	}
	return max(left, ShortOutput)
}

// recordOutput is the step output a run record holds, bytes.
func recordOutput(run *forge.Run) int {
	n := 0
	if run.Result != nil {
		for _, s := range run.Result.Steps {
			n += len(s.Output)
		}
	}
	return n
}

// budgetNote starts the output of a step cut short by its run's output
// budget; dropped is the number of bytes before the part kept.
func budgetNote(dropped int64) string {
	return fmt.Sprintf("[... %d bytes of earlier output omitted: this run's record has spent its budget for step output, so it keeps only the end of this step's; the full log is at /logs ...]\n", dropped)
}

// Parse parses f with o, or reports why it could not be read (File.Err)
// as a parse error naming the file.
func (f File) Parse(o workflow.Options) (*workflow.Workflow, error) {
	if f.Err != nil {
		if pe := (*workflow.ParseError)(nil); errors.As(f.Err, &pe) {
			return nil, pe
		}
		return nil, &workflow.ParseError{File: f.Path, Msg: f.Err.Error()}
	}
	return o.Parse(f.Path, f.Data)
}

// ParseTimeout bounds the parsing of one commit's workflow files where
// a slow parse would hold others up: in a push (the post-receive hook
// waits) and in a schedule reconcile. The limits checked before decoding
// keep a file's parse well under a second; this is the backstop.
const ParseTimeout = 20 * time.Second

// parseWithin parses f unless ctx ends first, in which case it gives up
// with a parse error saying so (the parse itself, bounded by the limits
// checked before decoding, finishes in the background).
func parseWithin(ctx context.Context, f File, o workflow.Options) (*workflow.Workflow, error) {
	type result struct {
		wf  *workflow.Workflow
		err error
	}
	done := make(chan result, 1)
	go func() {
		wf, err := f.Parse(o)
		done <- result{wf, err}
	}()
	select {
	case r := <-done:
		return r.wf, r.err
	case <-ctx.Done():
		return nil, &workflow.ParseError{File: f.Path, Msg: "parsing the file took too long (the push and schedule paths give up after a deadline); simplify it"}
	}
}

// checkRunSteps refuses a run of more than MaxRunSteps steps.
func checkRunSteps(wfs []*workflow.Workflow) error {
	n := 0
	for _, wf := range wfs {
		n += len(wf.Steps)
	}
	if n > MaxRunSteps {
		return fmt.Errorf("the run has %d steps in %d workflow files; a run may have at most %d", n, len(wfs), MaxRunSteps)
	}
	return nil
}

// parseOptions are how the runner parses workflow files.
func (r *Runner) parseOptions() workflow.Options {
	return workflow.Options{MinScheduleInterval: r.cfg.MinScheduleInterval}
}
