package registry

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kod-forge/kod/sandbox"
)

// The optional calls of the wrapped backend pass through Guarded, checked
// like steps where they may pull: a service's image, a cache's helper image
// and the artifact carrier image. A wrapped backend without the call
// answers with sandbox.ErrNotSupported.

// StartService implements sandbox.ServiceRunner: the service's image is
// checked like a step's.
func (g *Guarded) StartService(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec, out io.Writer) error {
	s, err := sandbox.Services(g.Backend)
	if err != nil {
		return err
	}
	checked, err := g.allow(ctx, svc.Image, svc.Pull)
	if err != nil {
		return fmt.Errorf("service %s: %w", svc.Name, err)
	}
	cp := *svc
	cp.Pull = checked(&sandbox.StepSpec{Pull: svc.Pull}).Pull
	return s.StartService(ctx, run, &cp, out)
}

// WaitServiceReady implements sandbox.ServiceRunner.
func (g *Guarded) WaitServiceReady(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec, ready []string, timeout time.Duration) error {
	s, err := sandbox.Services(g.Backend)
	if err != nil {
		return err
	}
	return s.WaitServiceReady(ctx, run, svc, ready, timeout)
}

// DestroyService implements sandbox.ServiceRunner.
func (g *Guarded) DestroyService(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec) error {
	s, err := sandbox.Services(g.Backend)
	if err != nil {
		return err
	}
	return s.DestroyService(ctx, run, svc)
}

// RestoreCache implements sandbox.CacheStore.
func (g *Guarded) RestoreCache(ctx context.Context, run *sandbox.RunSpec, c *sandbox.CacheSpec) error {
	s, err := sandbox.Caches(g.Backend)
	if err != nil {
		return err
	}
	return s.RestoreCache(ctx, run, c)
}

// SaveCache implements sandbox.CacheStore: the helper image is checked
// like a step's.
func (g *Guarded) SaveCache(ctx context.Context, run *sandbox.RunSpec, c *sandbox.CacheSpec) (sandbox.CacheSaved, error) {
	s, err := sandbox.Caches(g.Backend)
	if err != nil {
		return sandbox.CacheSaved{}, err
	}
	if _, err := g.allow(ctx, c.Image, sandbox.PullIfNotPresent); err != nil {
		return sandbox.CacheSaved{}, fmt.Errorf("save cache %s: %w", c.Path, err)
	}
	return s.SaveCache(ctx, run, c)
}

// DiscardCache implements sandbox.CacheStore.
func (g *Guarded) DiscardCache(ctx context.Context, run *sandbox.RunSpec, c *sandbox.CacheSpec) error {
	s, err := sandbox.Caches(g.Backend)
	if err != nil {
		return err
	}
	return s.DiscardCache(ctx, run, c)
}

// DeleteCacheLayers implements sandbox.CacheStore.
func (g *Guarded) DeleteCacheLayers(ctx context.Context, layers []string) error {
	s, err := sandbox.Caches(g.Backend)
	if err != nil {
		return err
	}
	return s.DeleteCacheLayers(ctx, layers)
}

// PruneCaches implements sandbox.CacheStore.
func (g *Guarded) PruneCaches(ctx context.Context, instance string, keep func(string) bool) ([]string, error) {
	s, err := sandbox.Caches(g.Backend)
	if err != nil {
		return nil, err
	}
	return s.PruneCaches(ctx, instance, keep)
}

// ReadArtifacts implements sandbox.ArtifactReader: the carrier image is
// checked like LoadWorkspace's.
func (g *Guarded) ReadArtifacts(ctx context.Context, run *sandbox.RunSpec, image string, patterns []string) (io.ReadCloser, error) {
	s, err := sandbox.Artifacts(g.Backend)
	if err != nil {
		return nil, err
	}
	if _, err := g.allow(ctx, image, sandbox.PullIfNotPresent); err != nil {
		return nil, fmt.Errorf("read artifacts of run %s: %w", run.ID, err)
	}
	return s.ReadArtifacts(ctx, run, image, patterns)
}

var (
	_ sandbox.ServiceRunner  = (*Guarded)(nil)
	_ sandbox.CacheStore     = (*Guarded)(nil)
	_ sandbox.ArtifactReader = (*Guarded)(nil)
)
