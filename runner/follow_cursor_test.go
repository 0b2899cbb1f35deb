package runner

import "testing"

// A cursor's Below comes from a client: the follower keeps it as a bound
// instead of one entry per step below it.
func TestFollowerBelowAllocatesNothingPerStep(t *testing.T) {
	allocs := testing.AllocsPerRun(3, func() {
		f := newFollower(LogOptions{From: &LogCursor{Below: 1 << 40}}, nil)
		if c := f.cursor(7); !c.started || !c.ended {
			t.Fatal("a step below Below is not delivered")
		}
		if c := f.cursor(1<<40 + 1); c.started || c.ended {
			t.Fatal("a step above Below is delivered")
		}
	})
	if allocs > 20 {
		t.Errorf("newFollower with a huge Below made %v allocations", allocs)
	}
}
