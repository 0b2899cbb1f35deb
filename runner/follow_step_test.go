package runner

import "testing"

// ?step=ID resolves to a step id (api.resolveStep); the follower matches
// that id only: a step whose name is another step's id ("ci.build") once
// got its output mixed into that step's log.
func TestStepFilterByIDDoesNotMatchNames(t *testing.T) {
	f := newFollower(LogOptions{Step: "ci.build"}, nil)
	if !f.wants(streamStep{ID: "ci.build", Name: "build"}) {
		t.Fatal("the step with that id is not wanted")
	}
	if f.wants(streamStep{ID: "ci.ci-build", Name: "ci.build"}) {
		t.Error("a step merely named like the requested id is streamed too")
	}
	if !f.wants(streamStep{Name: "ci.build"}) {
		t.Error("a step without an id (an old record) is not matched by name")
	}
}

// A name asked for before the run was planned matches by name until a
// step with that id shows up; then only that step matches.
func TestStepFilterByNameUntilPlanned(t *testing.T) {
	f := newFollower(LogOptions{Step: "build", StepByName: true}, nil)
	steps := []streamStep{{ID: "ci.build", Name: "build"}, {ID: "ci.test", Name: "test"}}
	f.resolve(steps)
	if !f.wants(steps[0]) || f.wants(steps[1]) {
		t.Error("a name asked before planning does not select the step of that name")
	}
	f = newFollower(LogOptions{Step: "ci.build", StepByName: true}, nil)
	steps = append(steps, streamStep{ID: "ci.x", Name: "ci.build"})
	f.resolve(steps)
	if !f.wants(steps[0]) || f.wants(steps[2]) {
		t.Error("once a step has the asked id, a step named like it is still streamed")
	}
}
