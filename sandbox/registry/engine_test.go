package registry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
	"github.com/kod-forge/kod/sandbox/registry"
)

// internalService is an HTTP service on the host's loopback that is not a
// registry: it answers the engine's version check, then 404 with a secret
// for anything else. It counts the requests it gets.
func internalService(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/v2/" {
			w.Write([]byte("{}"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "INTERNAL-SECRET-DATA: hunter2")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// guarded returns the Docker backend guarded by check, and a run of a fresh
// instance that is destroyed (with everything labelled with it) when the
// test ends.
func guarded(t *testing.T, check registry.Check) (*registry.Guarded, *sandbox.RunSpec) {
	t.Helper()
	d := dockertest.Require(t)
	g := registry.Guard(d, check)
	run := &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: dockertest.NewID(t), Network: sandbox.NetworkNone}
	t.Cleanup(func() {
		if err := d.DestroyRun(context.Background(), run); err != nil {
			t.Errorf("DestroyRun: %v", err)
		}
		dockertest.Clean(t, d, run.Instance)
	})
	if err := g.SetupRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	return g, run
}

func shStep(index int, image string, pull sandbox.PullPolicy) *sandbox.StepSpec {
	return &sandbox.StepSpec{Index: index, Name: "step", Image: image, Pull: pull, Command: []string{"/bin/sh", "-c", "true"}}
}

// TestEngineRegistryPolicy: a step image on a registry the host policy
// refuses (the server's loopback) is not pulled, so the engine never
// contacts it; where the policy allows it, the engine does, and the step's
// error does not repeat what the service answered.
func TestEngineRegistryPolicy(t *testing.T) {
	t.Parallel()
	srv, hits := internalService(t)
	img := strings.TrimPrefix(srv.URL, "http://") + "/some/image:tag"

	external, _ := netpolicy.Parse("external")
	g, run := guarded(t, external.CheckHost)
	err := g.StartStep(t.Context(), run, shStep(0, img, sandbox.PullIfNotPresent), io.Discard)
	var se *sandbox.StepError
	if !errors.As(err, &se) || !errors.Is(err, netpolicy.ErrRefused) || !strings.Contains(err.Error(), "127.0.0.1 is a loopback address that "+netpolicy.Setting+" does not allow") {
		t.Errorf("refused registry: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the engine sent %d requests to a refused registry", n)
	}

	loopback, _ := netpolicy.Parse("external,loopback")
	allowed, run2 := guarded(t, loopback.CheckHost)
	step := shStep(1, img, sandbox.PullIfNotPresent)
	err = allowed.StartStep(t.Context(), run2, step, io.Discard)
	if !errors.As(err, &se) || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "could not be pulled") {
		t.Errorf("failed pull from an allowed host: %v", err)
	}
	t.Log(err)
	if hits.Load() == 0 {
		t.Error("the engine did not contact the allowed registry")
	}
	if err := allowed.DestroyStep(t.Context(), run2, step); err != nil {
		t.Error(err)
	}
}

// TestPresentImageNeedsNoCheck: nothing is pulled for an image the engine
// has, so the registry is not checked (and may be anything).
func TestPresentImageNeedsNoCheck(t *testing.T) {
	t.Parallel()
	g, run := guarded(t, func(_ context.Context, host string) error {
		t.Errorf("registry %s checked for a present image", host)
		return errors.New("no")
	})
	step := shStep(0, dockertest.Image, sandbox.PullIfNotPresent)
	if err := g.StartStep(t.Context(), run, step, io.Discard); err != nil {
		t.Fatal(err)
	}
	state, err := g.WaitStep(t.Context(), run, step)
	if err != nil || state.ExitCode != 0 {
		t.Errorf("step in a present image: %+v %v", state, err)
	}
	if err := g.DestroyStep(t.Context(), run, step); err != nil {
		t.Error(err)
	}
}
