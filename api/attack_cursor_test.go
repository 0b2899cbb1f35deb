package api

import (
	"testing"

	"github.com/kod-forge/kod/runner"
)

// A Last-Event-ID of "<N" with a huge N must not be accepted as is: the
// follower marks every step below N delivered one map entry at a time
// (runner.newFollower: for i := range c.Below), so "<9223372036854775807"
// makes one request allocate until the server runs out of memory, and the
// loop ignores the client hanging up.
func TestAttackParseEventIDBoundsBelow(t *testing.T) {
	for _, id := range []string{"<9223372036854775807", "<2147483648", "0:0,<99999999999"} {
		cur, _, _, ok := parseEventID(id)
		if ok && cur.Below > runner.MaxRunSteps {
			t.Errorf("parseEventID(%q) accepted Below = %d; at most %d steps exist", id, cur.Below, runner.MaxRunSteps)
		}
	}
}
