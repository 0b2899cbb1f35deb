package sandbox_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/faultpoint"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// withArtifacts is a backend with one optional feature.
type withArtifacts struct{ sandbox.Backend }

func (withArtifacts) ReadArtifacts(context.Context, *sandbox.RunSpec, string, []string) (io.ReadCloser, error) {
	return io.NopCloser(nil), nil
}

// TestOptionalFeatures: the optional interfaces are found on a backend and
// through wrappers; a backend without them answers ErrNotSupported naming
// the feature.
func TestOptionalFeatures(t *testing.T) {
	fake := sandboxtest.New(func(context.Context, *sandbox.StepSpec, io.Writer) int { return 0 })
	if _, err := sandbox.Services(fake); !errors.Is(err, sandbox.ErrNotSupported) || err.Error() != "services: not supported by this sandbox backend" {
		t.Errorf("Services(fake) = %v", err)
	}
	if _, err := sandbox.Caches(fake); !errors.Is(err, sandbox.ErrNotSupported) {
		t.Errorf("Caches(fake) = %v", err)
	}
	wrapped := &faultpoint.Backend{Inner: withArtifacts{fake}}
	if _, err := sandbox.Artifacts(wrapped); err != nil {
		t.Errorf("Artifacts through a wrapper: %v", err)
	}
	if _, err := sandbox.Caches(wrapped); !errors.Is(err, sandbox.ErrNotSupported) {
		t.Errorf("Caches through a wrapper: %v", err)
	}
}
