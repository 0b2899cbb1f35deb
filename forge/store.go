package forge

import "context"

// RepoStore keeps repository records, keyed by their immutable ID with an
// index of their unique names. Methods that take a name resolve it through
// that index. Errors wrap ErrNotFound / ErrConflict.
type RepoStore interface {
	// CreateRepo stores a new record, giving it an ID when r.ID is "";
	// ErrConflict if the name is taken.
	CreateRepo(ctx context.Context, r *Repo) error
	// GetRepo returns the record named name; ErrNotFound if none.
	GetRepo(ctx context.Context, name string) (*Repo, error)
	// GetRepoByID returns the record with id; ErrNotFound if none.
	GetRepoByID(ctx context.Context, id string) (*Repo, error)
	// ListRepos returns every record, sorted by name.
	ListRepos(ctx context.Context) ([]*Repo, error)
	// UpdateRepo applies fn to the record inside one transaction and stores
	// the result. fn's error aborts the update and is returned. fn must not
	// change the name (renames are a separate operation).
	UpdateRepo(ctx context.Context, name string, fn func(*Repo) error) (*Repo, error)
	// DeleteRepo removes the record and every record attached to it (runs,
	// queue entries, and every other entity keyed by the repository).
	// ErrNotFound if none.
	DeleteRepo(ctx context.Context, name string) error
	// RenameRepo gives the record newName: one small transaction (the
	// record and the name index; everything attached refers to the id).
	// ErrNotFound, or ErrConflict if newName is taken.
	RenameRepo(ctx context.Context, oldName, newName string) (*Repo, error)
}

// TokenStore keeps API tokens (hashed).
type TokenStore interface {
	// CreateToken stores t; ErrConflict if its id or hash exists.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash finds a token by the SHA-256 of its secret; ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// GetToken finds a token by id; ErrNotFound.
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListTokens returns every token, oldest first.
	ListTokens(ctx context.Context) ([]*Token, error)
	// DeleteToken removes a token; ErrNotFound.
	DeleteToken(ctx context.Context, id string) error
	// CountTokens returns the number of stored tokens.
	CountTokens(ctx context.Context) (int, error)
	// TouchToken sets lastUsedAt (ms); a missing token is not an error.
	TouchToken(ctx context.Context, id string, at Millis) error
}

// RunStore keeps run records and the durable FIFO queue of queued runs.
type RunStore interface {
	// CreateRun assigns r.Seq, stores r and, if r is queued, appends it to
	// the queue. ErrConflict if the id exists.
	CreateRun(ctx context.Context, r *Run) error
	// GetRun returns a run by id; ErrNotFound.
	GetRun(ctx context.Context, id string) (*Run, error)
	// UpdateRun applies fn inside one transaction. A run leaving the queued
	// state leaves the queue in the same transaction.
	UpdateRun(ctx context.Context, id string, fn func(*Run) error) (*Run, error)
	// ListRuns returns the runs of one repository, newest first, at most
	// limit (0 = all).
	ListRuns(ctx context.Context, repo string, limit int) ([]*Run, error)
	// RunsWithStatus returns every run in one of the states, oldest first.
	RunsWithStatus(ctx context.Context, states ...RunStatus) ([]*Run, error)
	// QueuedRuns returns the queue in FIFO order.
	QueuedRuns(ctx context.Context) ([]*Run, error)
	// DeleteRun removes one run record (and its queue entry).
	DeleteRun(ctx context.Context, id string) error
}

// RunSummaryStore answers GET /workflows/status without loading every run.
type RunSummaryStore interface {
	// SummarizeRuns counts the runs of repos by status and returns the
	// recent (at most) newest of them, newest first, in one read. Only
	// those are decoded in full: memory stays bounded by recent records
	// however many runs the repositories hold.
	SummarizeRuns(ctx context.Context, repos []string, recent int) (map[RunStatus]int, []*Run, error)
}

// KeyStore keeps users' SSH public keys. A fingerprint is unique across all
// users. Errors wrap ErrNotFound ("SSH key not found") / ErrConflict.
type KeyStore interface {
	// CreateKey stores k; ErrConflict "SSH key already exists" if a key with
	// its fingerprint exists (for any user).
	CreateKey(ctx context.Context, k *SSHKey) error
	// GetKey returns the key with id; ErrNotFound.
	GetKey(ctx context.Context, id string) (*SSHKey, error)
	// KeyByFingerprint returns the key whose Fingerprint is fp; ErrNotFound.
	KeyByFingerprint(ctx context.Context, fp string) (*SSHKey, error)
	// ListKeys returns the keys of username ("" = every user), oldest first.
	ListKeys(ctx context.Context, username string) ([]*SSHKey, error)
	// DeleteKey removes the key with id; ErrNotFound.
	DeleteKey(ctx context.Context, id string) error
}

// MetaStore keeps server-wide values.
type MetaStore interface {
	// InstanceID returns this data dir's stable id, created on first use. It
	// labels every container so a server only sweeps its own.
	InstanceID(ctx context.Context) (string, error)
}

// Store is every store kod needs, composed from the per-entity interfaces.
type Store interface {
	RepoStore
	TokenStore
	RunStore
	RunSummaryStore
	KeyStore
	MetaStore
	SecretStore
	WebhookStore
	DeliveryStore
	CacheStore
	ArtifactStore
	Close() error
}
