// Package repos owns the lifecycle of repositories and what a push does to
// them: create, import, rename and delete (record and bare directory kept
// in step), the ref policy on pre-receive, and post-receive (default
// branch, queued runs, push webhook deliveries). Every transport calls it:
// the REST API, the SSH server (through the hook server) and the hook
// callback itself, so a rule lives in one place.
package repos

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/webhook"
)

// DefaultImportTimeout bounds one import's git clone.
const DefaultImportTimeout = 10 * time.Minute

// MaxConcurrentImports is how many imports clone at once; more wait for a
// slot (while their client waits), so a burst cannot exhaust the machine.
const MaxConcurrentImports = 2

// Store is what the lifecycle reads and writes: repositories, the tokens
// that own them, and the runs whose logs a deletion removes.
type Store interface {
	forge.RepoStore
	forge.TokenStore
	ListRuns(ctx context.Context, repo string, limit int) ([]*forge.Run, error)
}

// CacheDropper removes the caches of a repository being deleted
// (runner/cache.Manager): ForgetRepo reads what to remove before the
// records go, and the returned func removes it once they are gone.
type CacheDropper interface {
	ForgetRepo(ctx context.Context, repoID string) (drop func())
}

// Runs is the runner as the lifecycle uses it (runner.Runner).
type Runs interface {
	// OnPush queues the runs of a push and returns them with lines for
	// the pusher.
	OnPush(ctx context.Context, repo, tokenID string, updates []forge.RefUpdate) ([]*forge.Run, []string)
	// CancelRepo cancels every queued and executing run of repo.
	CancelRepo(ctx context.Context, repo string)
}

// PushNotifier records push deliveries (webhook.Dispatcher).
type PushNotifier interface {
	Push(ctx context.Context, repo string, events []webhook.PushEvent) error
}

// Config is everything a Service needs; Store, Git, Runs and Log are
// required.
type Config struct {
	ReposDir   string // bare repositories live at <ReposDir>/<name>.git
	LogsDir    string // step logs, removed with their repository
	HookBinary string // absolute path of the kod binary the git hooks run
	// HostPolicy decides which hosts imports may clone from
	// (KOD_WEBHOOK_ALLOWED_HOSTS); nil means netpolicy.Default.
	HostPolicy *netpolicy.Policy
	// ImportTimeout bounds one import's git clone; 0 means
	// DefaultImportTimeout.
	ImportTimeout time.Duration

	// ArtifactsDir holds the runs' artifact files (<dir>/<run>), removed
	// with their repository; "" = none.
	ArtifactsDir string
	// Caches removes a deleted repository's caches from the sandbox
	// backend; nil = none.
	Caches CacheDropper

	Store    Store
	Git      *gitsvc.Git
	Runs     Runs
	Webhooks PushNotifier // nil: no push deliveries
	Log      *slog.Logger
}

// Service is the repository and push lifecycle. It implements
// gitsvc.HookHandler. Safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger

	// namesMu serialises what claims, moves or frees a repository name on
	// disk and in the store (create, import, rename, delete), so a name is
	// never half-taken by two of them.
	namesMu sync.Mutex
	// importSlots bounds the imports cloning at once (MaxConcurrentImports).
	importSlots chan struct{}
}

// New returns the lifecycle over cfg.
func New(cfg Config) *Service {
	if cfg.HostPolicy == nil {
		cfg.HostPolicy, _ = netpolicy.Parse(netpolicy.Default)
	}
	if cfg.ImportTimeout <= 0 {
		cfg.ImportTimeout = DefaultImportTimeout
	}
	return &Service{cfg: cfg, log: cfg.Log.With("component", "repos"), importSlots: make(chan struct{}, MaxConcurrentImports)}
}

// Dir is the bare repository directory of r: always derived from the
// configured repos dir (the stored path is informational, so a moved or
// restored repos dir keeps working).
func (s *Service) Dir(r *forge.Repo) string {
	dir, err := gitsvc.RepoPath(s.cfg.ReposDir, r.Name)
	if err != nil {
		return r.Path // unreachable for stored (validated) names
	}
	return dir
}

var _ gitsvc.HookHandler = (*Service)(nil)
