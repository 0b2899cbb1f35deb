package forge

import "context"

// DefaultCacheLimit is the bytes of caches one repository may keep
// (KOD_CACHE_LIMIT): 10 GiB.
const DefaultCacheLimit int64 = 10 << 30

// Cache is the record of one cache: a directory a workflow keeps between
// runs of one repository and branch under a key (Kod API: GET
// /repos/:name/caches lists {key, branch, size, createdAt, lastUsedAt}).
// Size is bytes; times are ms since the epoch.
type Cache struct {
	RepoID     string `json:"repoId"`
	Key        string `json:"key"`
	Branch     string `json:"branch"`
	Size       int64  `json:"size"`
	CreatedAt  Millis `json:"createdAt"`
	LastUsedAt Millis `json:"lastUsedAt"`
	// Layers is the cache's state in the sandbox backend (opaque names,
	// oldest first; see sandbox.CacheStore). Several records may share
	// layers (a branch started from the default branch's cache).
	Layers []string `json:"layers"`
}

// CacheStore keeps cache records, keyed by repository id, branch and key.
// Errors wrap ErrNotFound ("Cache not found").
type CacheStore interface {
	// GetCache returns one record; ErrNotFound if none.
	GetCache(ctx context.Context, repoID, branch, key string) (*Cache, error)
	// ListCaches returns the records of a repository, least recently used
	// first.
	ListCaches(ctx context.Context, repoID string) ([]*Cache, error)
	// PutCache creates or replaces the record of c's repository, branch
	// and key; ErrNotFound if the repository does not exist.
	PutCache(ctx context.Context, c *Cache) error
	// TouchCache sets lastUsedAt; a missing record is not an error.
	TouchCache(ctx context.Context, repoID, branch, key string, at Millis) error
	// DeleteCache removes one record and returns it; ErrNotFound if none.
	DeleteCache(ctx context.Context, repoID, branch, key string) (*Cache, error)
}
