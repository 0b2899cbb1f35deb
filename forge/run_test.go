package forge

import "testing"

func TestStepFileAndRan(t *testing.T) {
	for workflow, want := range map[string]string{
		".kod/workflows/ci.toml":                  ".kod/workflows/ci.toml",
		".kod/workflows/ci.toml (GO=1.26, DB=pg)": ".kod/workflows/ci.toml",
		".kod/workflows/a (1).toml":               ".kod/workflows/a (1).toml",
		".kod/workflows/a (1).toml (GO=1.26)":     ".kod/workflows/a (1).toml",
		"":                                        "",
	} {
		if got := (StepResult{Workflow: workflow}).File(); got != want {
			t.Errorf("File of %q = %q, want %q", workflow, got, want)
		}
	}
	for _, c := range []struct {
		st   StepResult
		want bool
	}{
		{StepResult{Success: true}, true}, // an old record: every listed step ended
		{StepResult{Status: StepSkipped, Skipped: true, Success: true}, true},
		{StepResult{Status: StepCancelled}, false},
		{StepResult{Status: StepCancelled, StartedAt: 5}, true},
		{StepResult{Status: StepPending}, false},
		{StepResult{Status: StepFailed}, true}, // failed to start (image pull)
	} {
		if got := c.st.Ran(); got != c.want {
			t.Errorf("Ran of %+v = %v", c.st, got)
		}
	}
}
