// Package cache decides which cache a workflow starts from and what
// happens to it after: the records (forge.CacheStore) say which layers of
// the sandbox backend (sandbox.CacheStore) hold the cache of a repository,
// branch and key. The rules (cache poisoning is the known failure of shared
// caches): caches belong to one repository; a branch reads and writes its
// own; without one it starts from the default branch's cache for the key
// but never writes the default branch's; only a successful workflow saves;
// over the repository's limit the least recently used caches are evicted.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox"
)

// Manager applies the rules above. It is safe for concurrent use.
type Manager struct {
	records  forge.CacheStore
	repos    forge.RepoStore
	backend  sandbox.CacheStore
	instance string
	limit    int64
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	active  int             // restored caches not yet saved or discarded
	inUse   map[string]int  // layer -> runs started from it and not yet saved or discarded
	doomed  map[string]bool // layers no record refers to, removed once not in use
	saveMus map[string]*sync.Mutex
}

// Config configures a Manager.
type Config struct {
	Records  forge.CacheStore
	Repos    forge.RepoStore
	Backend  sandbox.CacheStore
	Instance string // server instance id: layers are pruned per instance
	Limit    int64  // bytes per repository (KOD_CACHE_LIMIT); 0 = forge.DefaultCacheLimit
	Log      *slog.Logger
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Limit <= 0 {
		cfg.Limit = forge.DefaultCacheLimit
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{records: cfg.Records, repos: cfg.Repos, backend: cfg.Backend, instance: cfg.Instance, limit: cfg.Limit,
		log: cfg.Log.With("component", "cache"), now: time.Now,
		inUse: map[string]int{}, doomed: map[string]bool{}, saveMus: map[string]*sync.Mutex{}}
}

// Restored is one cache of one workflow instance, between Restore and
// Save or Discard.
type Restored struct {
	RepoID, Branch, Key string
	Spec                *sandbox.CacheSpec
	from                *forge.Cache // the record started from; nil = empty
}

// Mount is how the steps of the workflow mount the cache.
func (r *Restored) Mount() sandbox.CacheMount {
	return sandbox.CacheMount{Index: r.Spec.Index, Path: r.Spec.Path}
}

// Want names a cache a workflow asks for.
type Want struct {
	RepoID        string
	Branch        string
	DefaultBranch string
	Key           string // resolved key
	Path          string // absolute path in the steps
	Index         int    // position in the workflow
	Image         string // helper image for the backend (the workflow's default step image)
}

// Restore prepares the run's working copy of the cache w names: from the
// branch's record, else the default branch's, else empty; the record
// started from is marked used now.
func (m *Manager) Restore(ctx context.Context, run *sandbox.RunSpec, w Want) (*Restored, error) {
	r := &Restored{RepoID: w.RepoID, Branch: w.Branch, Key: w.Key,
		Spec: &sandbox.CacheSpec{Index: w.Index, Path: w.Path, Image: w.Image}}
	for _, b := range []string{w.Branch, w.DefaultBranch} {
		if b == "" {
			continue
		}
		rec, err := m.records.GetCache(ctx, w.RepoID, b, w.Key)
		if errors.Is(err, forge.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.from = rec
		r.Spec.From = rec.Layers
		break
	}
	m.hold(r.Spec.From)
	if err := m.backend.RestoreCache(ctx, run, r.Spec); err != nil {
		m.release(ctx, r.Spec.From)
		return nil, fmt.Errorf("restoring cache %s: %w", w.Path, err)
	}
	if r.from != nil {
		if err := m.records.TouchCache(ctx, r.from.RepoID, r.from.Branch, r.from.Key, forge.NowMillis()); err != nil {
			m.log.Warn("marking a cache used", "err", err)
		}
	}
	return r, nil
}

// Save keeps what the run wrote as the branch's cache (the workflow
// succeeded), then evicts the repository's least recently used caches
// over the limit and removes layers no record needs any more.
func (m *Manager) Save(ctx context.Context, run *sandbox.RunSpec, r *Restored) error {
	defer m.release(ctx, r.Spec.From)
	saved, err := m.backend.SaveCache(ctx, run, r.Spec)
	if err != nil {
		return fmt.Errorf("saving cache %s: %w", r.Spec.Path, err)
	}
	if !saved.Changed {
		return nil
	}
	mu := m.saveLock(r.RepoID)
	mu.Lock()
	defer mu.Unlock()
	now := forge.NowMillis()
	old, err := m.records.GetCache(ctx, r.RepoID, r.Branch, r.Key)
	if err != nil && !errors.Is(err, forge.ErrNotFound) {
		return err
	}
	rec := &forge.Cache{RepoID: r.RepoID, Branch: r.Branch, Key: r.Key, Size: saved.Size, CreatedAt: now, LastUsedAt: now, Layers: saved.Layers}
	if err := m.records.PutCache(ctx, rec); err != nil {
		// The repository went away meanwhile: nothing refers to the layers.
		m.collect(ctx, r.RepoID, saved.Layers)
		return err
	}
	candidates := append([]string(nil), saved.Unused...)
	if old != nil {
		candidates = append(candidates, old.Layers...)
	}
	m.collect(ctx, r.RepoID, candidates)
	return m.evict(ctx, r.RepoID, rec)
}

// Discard drops what the run wrote (the workflow failed or was
// cancelled): the cache stays as it was.
func (m *Manager) Discard(ctx context.Context, run *sandbox.RunSpec, r *Restored) error {
	defer m.release(ctx, r.Spec.From)
	return m.backend.DiscardCache(ctx, run, r.Spec)
}

// Delete removes the cache record of a repository, branch and key and the
// layers no other record needs (Kod API: DELETE /repos/:name/caches/:key).
func (m *Manager) Delete(ctx context.Context, repoID, branch, key string) error {
	rec, err := m.records.DeleteCache(ctx, repoID, branch, key)
	if err != nil {
		return err
	}
	m.collect(ctx, repoID, rec.Layers)
	return nil
}

// evict deletes the least recently used records of the repository, other
// than keep, while their sizes add up to more than the limit.
func (m *Manager) evict(ctx context.Context, repoID string, keep *forge.Cache) error {
	list, err := m.records.ListCaches(ctx, repoID)
	if err != nil {
		return err
	}
	var total int64
	for _, c := range list {
		total += c.Size
	}
	for _, c := range list { // least recently used first
		if total <= m.limit {
			break
		}
		if c.Branch == keep.Branch && c.Key == keep.Key {
			continue
		}
		if _, err := m.records.DeleteCache(ctx, repoID, c.Branch, c.Key); err != nil && !errors.Is(err, forge.ErrNotFound) {
			return err
		}
		total -= c.Size
		m.log.Info("cache evicted", "repo", repoID, "branch", c.Branch, "key", c.Key, "size", c.Size, "limit", m.limit)
		m.collect(ctx, repoID, c.Layers)
	}
	return nil
}

// collect removes those of layers no record of the repository refers to;
// layers a running workflow started from are removed when it ends.
func (m *Manager) collect(ctx context.Context, repoID string, layers []string) {
	if len(layers) == 0 {
		return
	}
	list, err := m.records.ListCaches(ctx, repoID)
	if err != nil {
		m.log.Error("listing caches to remove layers", "err", err)
		return
	}
	used := map[string]bool{}
	for _, c := range list {
		for _, l := range c.Layers {
			used[l] = true
		}
	}
	var drop []string
	m.mu.Lock()
	for _, l := range layers {
		switch {
		case used[l]:
		case m.inUse[l] > 0:
			m.doomed[l] = true
		default:
			drop = append(drop, l)
		}
	}
	m.mu.Unlock()
	m.drop(ctx, drop)
}

func (m *Manager) drop(ctx context.Context, layers []string) {
	if len(layers) == 0 {
		return
	}
	if err := m.backend.DeleteCacheLayers(context.WithoutCancel(ctx), layers); err != nil {
		m.log.Error("removing cache layers", "err", err)
	}
}

// hold marks layers in use by a run.
func (m *Manager) hold(layers []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active++
	for _, l := range layers {
		m.inUse[l]++
	}
}

// release ends a hold and removes layers doomed meanwhile.
func (m *Manager) release(ctx context.Context, layers []string) {
	var drop []string
	m.mu.Lock()
	m.active--
	for _, l := range layers {
		if m.inUse[l]--; m.inUse[l] <= 0 {
			delete(m.inUse, l)
			if m.doomed[l] {
				delete(m.doomed, l)
				drop = append(drop, l)
			}
		}
	}
	m.mu.Unlock()
	m.drop(ctx, drop)
}

func (m *Manager) saveLock(repoID string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	mu, ok := m.saveMus[repoID]
	if !ok {
		mu = &sync.Mutex{}
		m.saveMus[repoID] = mu
	}
	return mu
}

// DeleteRepo removes the layers of a deleted repository's caches (the
// records the store held before it deleted them); layers a running
// workflow started from go when it ends.
func (m *Manager) DeleteRepo(ctx context.Context, caches []*forge.Cache) {
	var drop []string
	m.mu.Lock()
	for _, c := range caches {
		for _, l := range c.Layers {
			if m.inUse[l] > 0 {
				m.doomed[l] = true
			} else {
				drop = append(drop, l)
			}
		}
	}
	m.mu.Unlock()
	m.drop(ctx, drop)
}

// ForgetRepo implements repos.CacheDropper: it reads the repository's
// cache records now; the returned func removes their layers (call it once
// the store deleted the repository).
func (m *Manager) ForgetRepo(ctx context.Context, repoID string) func() {
	list, err := m.records.ListCaches(ctx, repoID)
	if err != nil {
		m.log.Error("listing the caches of a repository being deleted", "err", err)
		return func() {}
	}
	return func() { m.DeleteRepo(ctx, list) }
}

// Prune removes the layers of this instance that no record of any
// repository refers to: what a crash left between a restore and a save.
// Call it when no workflow runs (at startup, before the queue starts): a
// running workflow's new layer has no record yet; with caches restored it
// does nothing. It returns how many layers it removed.
func (m *Manager) Prune(ctx context.Context) (int, error) {
	m.mu.Lock()
	busy := m.active > 0
	m.mu.Unlock()
	if busy {
		return 0, nil
	}
	repos, err := m.repos.ListRepos(ctx)
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, r := range repos {
		list, err := m.records.ListCaches(ctx, r.ID)
		if err != nil {
			return 0, err
		}
		for _, c := range list {
			for _, l := range c.Layers {
				keep[l] = true
			}
		}
	}
	removed, err := m.backend.PruneCaches(ctx, m.instance, func(l string) bool { return keep[l] })
	if len(removed) > 0 {
		m.log.Info("removed unused cache layers", "layers", len(removed))
	}
	return len(removed), err
}
