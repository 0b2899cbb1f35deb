package kubernetes

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
)

// TestServicesAndArtifactsUnsupported: services and artifacts are found
// on the backend and fail with an error naming it and wrapping
// sandbox.ErrNotSupported; removing a service is a no-op; caches are not
// offered at all.
func TestServicesAndArtifactsUnsupported(t *testing.T) {
	k, cs := newFake(t, Config{})
	ctx := context.Background()
	run := &sandbox.RunSpec{ID: "r1", Workspace: "ci", Instance: "i1"}
	sr, err := sandbox.Services(k)
	if err != nil {
		t.Fatal(err)
	}
	svc := &sandbox.ServiceSpec{Name: "db", Image: "kod/db:local"}
	err = sr.StartService(ctx, run, svc, nil)
	if !errors.Is(err, sandbox.ErrNotSupported) || !strings.Contains(err.Error(), "the kubernetes backend cannot run services yet") {
		t.Errorf("StartService = %v", err)
	}
	if err := sr.DestroyService(ctx, run, svc); err != nil {
		t.Errorf("DestroyService = %v; want nil", err)
	}
	ar, err := sandbox.Artifacts(k)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := ar.ReadArtifacts(ctx, run, "kod/busybox:local", []string{"out.txt"}); rc != nil || !errors.Is(err, sandbox.ErrNotSupported) ||
		!strings.Contains(err.Error(), "the kubernetes backend cannot keep artifacts yet") {
		t.Errorf("ReadArtifacts = %v, %v", rc, err)
	}
	if _, err := sandbox.Caches(k); !errors.Is(err, sandbox.ErrNotSupported) {
		t.Errorf("Caches = %v; want not supported", err)
	}
	if acts := cs.Actions(); len(acts) != 0 {
		t.Errorf("the unsupported calls reached the cluster: %v", acts)
	}
}
