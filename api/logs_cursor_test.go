package api

import (
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// A Last-Event-ID of "<N" (or a step index) beyond any run is refused: the
// follower once marked every step below N delivered one entry at a time,
// so "<9223372036854775807" made one request allocate without bound.
func TestParseEventIDBoundsIndexes(t *testing.T) {
	for _, id := range []string{"<9223372036854775807", "<2147483648", "0:0,<99999999999", "99999999:0", "0:0,5000:3"} {
		if cur, _, _, ok := parseEventID(id); ok {
			t.Errorf("parseEventID(%q) accepted %+v", id, cur)
		}
	}
	for _, id := range []string{"<3", "2:10", "0:0,4:7+,<2"} {
		if _, _, _, ok := parseEventID(id); !ok {
			t.Errorf("parseEventID(%q) refused", id)
		}
	}
}

// A cursor beyond the steps of a finished run is refused (400) rather
// than answered with an empty stream an EventSource reconnects to forever.
func TestCursorFitsFinishedRun(t *testing.T) {
	done := &forge.Run{Status: forge.RunCompleted, Result: &forge.Result{Steps: make([]forge.StepResult, 3)}}
	for _, c := range []struct {
		cur  runner.LogCursor
		want bool
	}{
		{runner.LogCursor{Below: 3}, true},
		{runner.LogCursor{Below: 2, At: []runner.LogPosition{{Step: 2, Offset: 5}}}, true},
		{runner.LogCursor{Below: 150}, false},
		{runner.LogCursor{Below: 0, At: []runner.LogPosition{{Step: 40}}}, false},
	} {
		if got := cursorFits(done, c.cur); got != c.want {
			t.Errorf("cursorFits(finished run of 3 steps, %+v) = %v, want %v", c.cur, got, c.want)
		}
	}
	live := &forge.Run{Status: forge.RunRunning, Result: &forge.Result{Steps: make([]forge.StepResult, 3)}}
	if !cursorFits(live, runner.LogCursor{Below: 5}) {
		t.Error("a live run's cursor was refused (its services may not be recorded yet)")
	}
}
