package docker

import (
	"errors"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
)

func TestPullReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 400)
	for in, want := range map[string]string{
		// What dockerd 20.10 answers when a non-registry says 404 with a body.
		`error parsing HTTP 404 response body: invalid character 'I' looking for beginning of value: "INTERNAL-SECRET-DATA: hunter2\nsecond line"`: "error parsing HTTP 404 response body (not shown)",
		`Get "http://127.0.0.1:3295/v2/": dial tcp 127.0.0.1:3295: connect: connection refused`:                                                    `Get "http://127.0.0.1:3295/v2/": dial tcp 127.0.0.1:3295: connect: connection refused`,
		"manifest unknown\nsecret on the second line":                                                                                              "manifest unknown",
		long: long[:296] + "...",
	} {
		got := pullReason(in)
		if got != want {
			t.Errorf("pullReason(%.60q) = %q, want %q", in, got, want)
		}
		if len(got) > maxPullReason {
			t.Errorf("pullReason(%.60q) is %d bytes", in, len(got))
		}
	}
}

// TestPullFailureHidesTheAnswer: a pull failure shows the engine's reason
// without what the registry said.
func TestPullFailureHidesTheAnswer(t *testing.T) {
	t.Parallel()
	d, f := newPullBackend(t)
	close(f.release)
	f.err = errors.New(`error parsing HTTP 404 response body: invalid character 'I' looking for beginning of value: "INTERNAL-SECRET-DATA"`)
	err := d.ensureImage(t.Context(), "ghcr.io/o/i:1", sandbox.PullAlways)
	var se *sandbox.StepError
	if !errors.As(err, &se) || !errors.Is(err, f.err) || f.calls.Load() != 1 || strings.Contains(err.Error(), "SECRET") ||
		!strings.HasSuffix(err.Error(), "response body (not shown)") {
		t.Errorf("failed pull: %v after %d pulls", err, f.calls.Load())
	}
}
