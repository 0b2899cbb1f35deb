package runner

import "testing"

// ?step=ID resolves to a step id (api.resolveStep), but the follower then
// matches that string against every step's name too: a step whose name is
// another step's id ("ci.build") gets its output mixed into that step's
// raw log. Observed: GET .../logs?step=ci.build-txt-exe returned "ok\nsecond",
// the output of two steps.
func TestAttackStepFilterByIDDoesNotMatchNames(t *testing.T) {
	f := newFollower(LogOptions{Step: "ci.build"}, nil)
	if !f.wants(streamStep{ID: "ci.build", Name: "build"}) {
		t.Fatal("the step with that id is not wanted")
	}
	if f.wants(streamStep{ID: "ci.ci-build", Name: "ci.build"}) {
		t.Error("a step merely named like the requested id is streamed too")
	}
}
