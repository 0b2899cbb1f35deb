package runner_test

import (
	"os"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/workflow"
)

// TestMain lets the schedule tests fire every second (users get a minute at
// least), before any test parses a workflow.
func TestMain(m *testing.M) {
	workflow.MinScheduleInterval = time.Second
	os.Exit(m.Run())
}
