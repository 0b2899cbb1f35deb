package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// The calls in this file are optional for a Backend: the engine finds them
// by type assertion (Services, Caches, Artifacts below), so a backend
// without them still runs workflows that use none of these features, and
// one that uses them fails with ErrNotSupported naming the feature.

// ErrNotSupported is wrapped by the error of Services, Caches and Artifacts
// when the backend lacks the feature.
var ErrNotSupported = errors.New("not supported by this sandbox backend")

// ServiceSpec is a container started beside a workflow's steps (a database
// for the tests), reachable from the steps of the same RunSpec by Name.
type ServiceSpec struct {
	Name    string // hostname on the run's network: [a-z0-9-], at most 40 bytes, unique in the RunSpec
	Image   string // image reference, e.g. "postgres:16"
	Pull    PullPolicy
	Command []string // argv; nil = the image's own entrypoint and command
	Env     []string // "NAME=value" entries; later entries win
	Limits  Limits   // the same caps as steps
}

// ServiceRunner runs service containers. Services get the same hardening
// and limits as steps, no workspace and no host mounts, and the run's
// labels, so DestroyRun and Sweep remove them like steps.
type ServiceRunner interface {
	// StartService pulls (per svc.Pull), creates and starts the service on
	// the run's network with the alias svc.Name, copying its combined
	// output to out until it ends or DestroyService is called. A run with
	// sandbox.NetworkNone cannot have services (error). Image and spec
	// problems are *StepError; on error nothing is left running.
	StartService(ctx context.Context, run *RunSpec, svc *ServiceSpec, out io.Writer) error
	// WaitServiceReady runs ready (argv, e.g. {"/bin/sh", "-c", "pg_isready"})
	// inside the service every poll interval until it exits 0; nil ready
	// only checks that the service is running. It fails with a
	// *ServiceError carrying the service's last output lines when the
	// service exits first or timeout (> 0) passes; ctx.Err() when ctx ends.
	WaitServiceReady(ctx context.Context, run *RunSpec, svc *ServiceSpec, ready []string, timeout time.Duration) error
	// DestroyService kills and removes the service container and stops
	// following its output. Idempotent.
	DestroyService(ctx context.Context, run *RunSpec, svc *ServiceSpec) error
}

// ServiceError says why a service did not become ready; Log holds its last
// output lines (at most about 20), for the workflow's error.
type ServiceError struct {
	Service string
	Msg     string // "exited with code 1", "not ready after 60s"
	Log     string
}

func (e *ServiceError) Error() string {
	if e.Log == "" {
		return fmt.Sprintf("service %s %s (no output)", e.Service, e.Msg)
	}
	return fmt.Sprintf("service %s %s; its last output:\n%s", e.Service, e.Msg, e.Log)
}

// CacheSpec is one cache of a workflow: a directory kept between runs,
// mounted at Path in every step of the RunSpec that lists it in
// StepSpec.Caches. A cache's state is a list of immutable layers (opaque
// names of the backend's objects, oldest first); the caller keeps which
// state belongs to which repository, branch and key.
type CacheSpec struct {
	Index int    // position of the cache in the workflow, 0-based; names the run's working copy
	Path  string // absolute path in the step containers
	// From is the state the run starts from: the branch's cache for the
	// key, else the default branch's; nil = an empty cache.
	From []string
	// Image is an image with a POSIX shell, du and cp (the workflow's
	// default step image) the backend may run to measure or squash the
	// cache in SaveCache.
	Image string
}

// CacheSaved is the state of a cache after SaveCache.
type CacheSaved struct {
	// Layers is the new state. It equals CacheSpec.From when the run wrote
	// nothing into the cache.
	Layers []string
	// Changed reports whether Layers differ from CacheSpec.From.
	Changed bool
	// Size is the bytes of the cache's content as the steps saw it
	// (disk usage of the whole directory, rounded to KiB).
	Size int64
	// Unused are layers of From that Layers no longer needs (after the
	// backend squashed the state); the caller deletes them with
	// DeleteCacheLayers once no other record refers to them.
	Unused []string
}

// CacheStore keeps caches between runs. Layers are never changed once
// saved, so several runs may start from the same state at once and a
// branch may start from the default branch's state without a copy.
// Layers carry none of the run's labels: Sweep and DestroyRun leave them.
type CacheStore interface {
	// RestoreCache makes the run's working copy of c from c.From, ready
	// to be mounted in steps (StepSpec.Caches). Writes go to the working
	// copy only; the layers of c.From are never written.
	RestoreCache(ctx context.Context, run *RunSpec, c *CacheSpec) error
	// SaveCache turns the run's working copy into the cache's new state
	// (call it after the workflow succeeded and its steps ended). Without
	// it the working copy is discarded by DiscardCache or DestroyRun.
	SaveCache(ctx context.Context, run *RunSpec, c *CacheSpec) (CacheSaved, error)
	// DiscardCache removes the run's working copy (a failed workflow: the
	// old state stays). Idempotent.
	DiscardCache(ctx context.Context, run *RunSpec, c *CacheSpec) error
	// DeleteCacheLayers removes layers (eviction, a deleted cache or
	// repository). Missing layers are not errors; a layer in use by a
	// running step is an error and stays.
	DeleteCacheLayers(ctx context.Context, layers []string) error
	// PruneCaches removes every layer of instance that keep rejects
	// (leftovers of a crash between a run's restore and its save) and that
	// no container uses. It returns the removed layers.
	PruneCaches(ctx context.Context, instance string, keep func(layer string) bool) ([]string, error)
}

// CacheMount puts a restored cache (CacheSpec.Index of the same RunSpec)
// at Path in a step.
type CacheMount struct {
	Index int
	Path  string
}

// ArtifactReader copies build outputs out of a workspace.
type ArtifactReader interface {
	// ReadArtifacts returns a tar stream of the workspace entries matching
	// patterns: slash-separated globs relative to the workspace (path.Match
	// syntax per component; a pattern matching a directory, or ending in
	// "/", takes the directory with everything under it). Entry names are
	// relative to the workspace, parents before children, each entry once.
	// Symbolic links are entries of their own, never followed: a pattern
	// whose directory part crosses a link matches nothing, so nothing
	// outside the workspace is reachable. Invalid patterns (absolute,
	// "..", empty) are an error before anything is read. The caller closes
	// the stream; closing early is fine.
	// image is an image the backend may use as a carrier (not run), like
	// LoadWorkspace's.
	ReadArtifacts(ctx context.Context, run *RunSpec, image string, patterns []string) (io.ReadCloser, error)
}

// Wrapper is implemented by backends that wrap another one (metrics, fault
// points) and only observe it: the optional interfaces are looked up
// through them. A wrapper that must see the optional calls (the registry
// guard) implements them itself instead.
type Wrapper interface {
	Unwrap() Backend
}

// find returns the first backend in b's wrapper chain that is a T.
func find[T any](b Backend, feature string) (T, error) {
	for b != nil {
		if t, ok := b.(T); ok {
			return t, nil
		}
		w, ok := b.(Wrapper)
		if !ok {
			break
		}
		b = w.Unwrap()
	}
	var zero T
	return zero, fmt.Errorf("%s: %w", feature, ErrNotSupported)
}

// Services returns b's ServiceRunner (looked up through wrappers), or an
// error wrapping ErrNotSupported.
func Services(b Backend) (ServiceRunner, error) { return find[ServiceRunner](b, "services") }

// Caches returns b's CacheStore (looked up through wrappers), or an error
// wrapping ErrNotSupported.
func Caches(b Backend) (CacheStore, error) { return find[CacheStore](b, "caches") }

// Artifacts returns b's ArtifactReader (looked up through wrappers), or an
// error wrapping ErrNotSupported.
func Artifacts(b Backend) (ArtifactReader, error) { return find[ArtifactReader](b, "artifacts") }
