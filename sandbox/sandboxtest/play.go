package sandboxtest

import (
	"context"
	"io"
	"time"

	"github.com/kod-forge/kod/sandbox"
)

// Play is how a step behaves in Steps: it writes Output, then waits for
// Sleep and for Until to be closed (either may be zero), then exits with
// Exit. A stopped step exits at once with 143 (or Exit if not 0).
type Play struct {
	Output string
	Sleep  time.Duration
	Until  <-chan struct{}
	Exit   int
}

// Steps returns a StepFunc playing each step by its StepSpec.Name; steps
// not in byName print nothing and exit 0.
func Steps(byName map[string]Play) StepFunc {
	return func(ctx context.Context, step *sandbox.StepSpec, out io.Writer) int {
		p := byName[step.Name]
		if p.Output != "" {
			io.WriteString(out, p.Output)
		}
		if p.Sleep > 0 {
			t := time.NewTimer(p.Sleep)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return p.Exit
			}
		}
		if p.Until != nil {
			select {
			case <-p.Until:
			case <-ctx.Done():
				return p.Exit
			}
		}
		return p.Exit
	}
}
