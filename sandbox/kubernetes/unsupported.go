package kubernetes

import (
	"context"
	"io"
	"time"

	"github.com/kod-forge/kod/sandbox"
)

// The Kubernetes backend runs no services and reads no artifacts yet. It
// implements sandbox.ServiceRunner and sandbox.ArtifactReader only to say
// so: a workflow with services or artifacts fails with an error naming the
// backend (wrapping sandbox.ErrNotSupported) instead of the generic one.
// It does not implement sandbox.CacheStore, so a server on it keeps no
// caches and a workflow with caches fails before its steps ("this server
// keeps no caches").

// unsupportedError is the error of a feature the backend lacks.
type unsupportedError struct{ what string }

func (e *unsupportedError) Error() string { return "the kubernetes backend cannot " + e.what + " yet" }

func (e *unsupportedError) Unwrap() error { return sandbox.ErrNotSupported }

var (
	errNoServices  = &unsupportedError{"run services"}
	errNoArtifacts = &unsupportedError{"keep artifacts"}
)

// StartService fails: services are not supported (errNoServices). Nothing
// is created.
func (k *Kubernetes) StartService(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec, out io.Writer) error {
	return errNoServices
}

// WaitServiceReady fails like StartService.
func (k *Kubernetes) WaitServiceReady(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec, ready []string, timeout time.Duration) error {
	return errNoServices
}

// DestroyService has nothing to remove (StartService creates nothing): nil.
func (k *Kubernetes) DestroyService(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec) error {
	return nil
}

// ReadArtifacts fails: artifacts are not supported (errNoArtifacts).
func (k *Kubernetes) ReadArtifacts(ctx context.Context, run *sandbox.RunSpec, image string, patterns []string) (io.ReadCloser, error) {
	return nil, errNoArtifacts
}

var (
	_ sandbox.ServiceRunner  = (*Kubernetes)(nil)
	_ sandbox.ArtifactReader = (*Kubernetes)(nil)
)
