package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/runner/workflow"
)

// node is one step of a workflow instance being executed.
type node struct {
	st         *plan.Step
	needs      []*node
	dependents []*node
	waiting    int // needs that have not ended yet

	vars workflow.Vars // what the step saw when it started (its exports expand with them)
	end  StepEnd
	// block, once the step ended, is the end every step needing it gets
	// instead of running (a failure skips, a cancellation cancels); nil
	// when dependents may run.
	block *StepEnd
}

// graph runs the steps of one workflow instance: each starts once every
// step it needs has ended. All state is owned by the goroutine in run; the
// steps' own goroutines report back on done.
type graph struct {
	in      *instance
	nodes   []*node
	exports []workflow.EnvVar // legacy exports of the steps that ran, in the order they ended
	done    chan *node
}

func newGraph(in *instance) *graph {
	g := &graph{in: in, done: make(chan *node)}
	byID := make(map[string]*node, len(in.wf.Steps))
	for _, st := range in.wf.Steps {
		n := &node{st: st}
		g.nodes = append(g.nodes, n)
		byID[st.ID] = n
	}
	for _, n := range g.nodes {
		for _, id := range n.st.Needs {
			need, ok := byID[id]
			if !ok || need == n {
				// Compile refuses unknown names; a plan built by hand
				// that names one waits for nothing.
				in.x.log().Error("a step needs an unknown step", "step", n.st.ID, "needs", id)
				continue
			}
			n.needs = append(n.needs, need)
			need.dependents = append(need.dependents, n)
			n.waiting++
		}
	}
	return g
}

// run executes the graph under ctx and returns once every step ended.
func (g *graph) run(ctx context.Context) {
	var queue []*node
	for _, n := range g.nodes {
		if n.waiting == 0 {
			queue = append(queue, n)
		}
	}
	left, running := len(g.nodes), 0
	for left > 0 {
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			if g.launch(ctx, n) {
				running++
				continue
			}
			left--
			queue = append(queue, g.finish(n)...)
		}
		if running == 0 {
			if left > 0 {
				// Only a cycle leaves steps that can never be ready;
				// compile refuses cycles.
				for _, n := range g.nodes {
					if n.waiting > 0 {
						n.end = StepEnd{Status: StepSkipped, Error: "needs steps that form a cycle"}
						n.waiting = 0
						g.in.failed = true
						g.in.x.sink.StepEnded(n.st, n.end)
					}
				}
			}
			return
		}
		n := <-g.done
		running--
		left--
		queue = append(queue, g.finish(n)...)
	}
}

// launch decides what happens to a step whose needs have all ended: it is
// skipped or cancelled at once (false), or its container is started in a
// goroutine that reports on g.done (true).
func (g *graph) launch(ctx context.Context, n *node) bool {
	for _, need := range n.needs {
		if need.block != nil {
			n.end = *need.block
			n.block = need.block
			return false
		}
	}
	if cause := context.Cause(ctx); cause != nil {
		n.end = interrupted(cause, nil, time.Time{})
		return false
	}
	in := g.in
	n.vars = in.vars(n.st, g.exports)
	if !n.st.If.Eval(n.vars.Branch, n.vars.Env) {
		n.end = StepEnd{Status: StepSkipped}
		return false
	}
	spec := in.stepSpec(n.st, n.vars)
	go func() {
		n.end = in.runStep(ctx, n.st, spec)
		g.done <- n
	}()
	return true
}

// finish reports the end of n and returns the dependents that became ready.
func (g *graph) finish(n *node) []*node {
	in := g.in
	in.x.sink.StepEnded(n.st, n.end)
	if !n.end.Started.IsZero() && len(n.st.Exports) > 0 {
		g.exports = append(g.exports, legacy(n.st).ExportValues(n.vars)...)
	}
	switch n.end.Status {
	case StepFailed:
		if !n.st.ContinueOnError {
			n.block = &StepEnd{Status: StepSkipped, Error: fmt.Sprintf("needs '%s', which failed", n.st.Name)}
			in.failed = true
			if in.wf.FailFast {
				in.x.failFast(in)
			}
		}
	case StepCancelled:
		n.block = &StepEnd{Status: StepCancelled, Error: n.end.Error}
		in.failed = true
	}
	var ready []*node
	for _, d := range n.dependents {
		d.waiting--
		if d.waiting == 0 {
			ready = append(ready, d)
		}
	}
	return ready
}
