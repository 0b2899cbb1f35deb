package server

import (
	"context"
	"path/filepath"

	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner/artifact"
	"github.com/kod-forge/kod/runner/cache"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/registry"
)

// pipelineParts are the artifact files and the cache manager: what runs
// keep beside their records.
type pipelineParts struct {
	artifacts *artifact.Store
	caches    *cache.Manager // nil when the backend has no caches
}

// artifactsDir holds the artifact files: <data>/artifacts/<run>/.
func (s *Server) artifactsDir() string { return filepath.Join(s.dataDir, "artifacts") }

// newPipelineParts builds the artifact store and, if the backend keeps
// caches, the cache manager over the backend behind the registry policy
// (a cache's helper image is checked like a step's).
func (s *Server) newPipelineParts() (pipelineParts, error) {
	p := pipelineParts{artifacts: &artifact.Store{Dir: s.artifactsDir(), Records: s.store, Limit: int64(s.cfg.ArtifactLimit)}}
	registries, err := s.cfg.RegistryPolicy()
	if err != nil {
		return p, err
	}
	if _, err := sandbox.Caches(s.backend); err != nil {
		return p, nil
	}
	guarded := registry.Guard(s.backend, registries.CheckHost)
	p.caches = cache.New(cache.Config{Records: s.store, Repos: s.store, Backend: guarded, Instance: s.instance,
		Limit: int64(s.cfg.CacheLimit), Log: s.log})
	return p, nil
}

// pruneCaches removes cache layers no record names (a crash between a
// workflow's restore and its save), before the runner starts.
func (s *Server) pruneCaches(ctx context.Context) {
	if s.pipeline.caches == nil {
		return
	}
	if n, err := s.pipeline.caches.Prune(ctx); err != nil {
		s.log.Warn("removing unused cache layers", "err", err)
	} else if n > 0 {
		s.log.Info("removed unused cache layers", "layers", n)
	}
}

// cacheDropper is the cache manager as repository deletion uses it; a nil
// interface (not a nil pointer) without one.
func (p pipelineParts) cacheDropper() repos.CacheDropper {
	if p.caches == nil {
		return nil
	}
	return p.caches
}
