// Package runner turns pushes and triggers into workflow runs and executes
// them: it parses .kod/workflows files into plans, keeps the durable FIFO
// queue moving under a concurrency limit, runs every step in its own
// container through a sandbox.Backend (compiled by runner/plan, executed by
// runner/engine as a graph), and captures step output into log files and
// run records.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/artifact"
	"github.com/kod-forge/kod/runner/cache"
	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/faultpoint"
)

// Config tunes the runner. Zero values take the defaults noted.
type Config struct {
	Instance      string             // server instance id, labels every container (required)
	DefaultImage  string             // image of steps whose workflow names none (required)
	Pull          sandbox.PullPolicy // default sandbox.PullIfNotPresent
	MaxConcurrent int                // runs executing at once; default 2
	// MaxParallelSteps bounds step containers executing at once across
	// every run (KOD_MAX_PARALLEL_STEPS); default runtime.NumCPU().
	MaxParallelSteps int
	LogsDir          string         // step logs go to <LogsDir>/<run>/<step>.log (required)
	StopGrace        time.Duration  // SIGTERM-to-SIGKILL grace on cancel/timeout; default 10 s
	OutputCap        int            // bytes of a step's output kept in the run record; default 64 KiB
	OutputBudget     int            // bytes of output all steps of a run keep in its record; default DefaultOutputBudget
	LogCap           int64          // bytes of a step's log kept on disk (first and last half); default DefaultLogCap
	Limits           sandbox.Limits // per step container
	CloneDepth       int            // commits of history in a workspace checkout; 0 = all (KOD_CLONE_DEPTH)
	SweepEvery       time.Duration  // period of the leak sweep; default 1 min
	Secrets          Secrets        // repository secrets for the steps; nil: none
	// Retention is how many runs of each repository are kept with their
	// logs; older finished runs are deleted. 0 keeps every run.
	Retention int
	// KeepSuperseded turns off the supersede policy: by default a push
	// cancels the older queued push runs of the same branch and workflow
	// files (see OnPush).
	KeepSuperseded bool
	// ScheduleEvery is how often `[on] schedule` entries are brought in
	// line with the repositories' default branches (besides after pushes);
	// default 1 min.
	ScheduleEvery time.Duration
	// MinScheduleInterval is the shortest interval between two firings a
	// workflow schedule may ask for; 0 means workflow.MinScheduleInterval
	// (one minute). Tests lower it.
	MinScheduleInterval time.Duration
	// OnRunDone, if set, is called once for every run that reaches a final
	// state (after it is stored). It must not block for long.
	OnRunDone func(ctx context.Context, run *forge.Run)

	// ArtifactsDir holds the artifact files of runs (<dir>/<run>/), removed
	// with their run by the retention; "" = none.
	ArtifactsDir string
	// Artifacts keeps the artifacts of steps (in ArtifactsDir); nil = a
	// step with artifacts fails saying the server keeps none.
	Artifacts *artifact.Store
	// Caches restores and saves workflow caches; nil (a backend without
	// caches) = a workflow with caches fails saying so.
	Caches *cache.Manager
}

func (c *Config) setDefaults() {
	if c.Pull == "" {
		c.Pull = sandbox.PullIfNotPresent
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 2
	}
	if c.MaxParallelSteps <= 0 {
		c.MaxParallelSteps = runtime.NumCPU()
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.OutputCap <= 0 {
		c.OutputCap = 64 << 10
	}
	if c.OutputBudget <= 0 {
		c.OutputBudget = DefaultOutputBudget
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = time.Minute
	}
	if c.LogCap <= 0 {
		c.LogCap = DefaultLogCap
	}
	if c.ScheduleEvery <= 0 {
		c.ScheduleEvery = time.Minute
	}
}

// Store is what the runner needs from the forge store.
type Store interface {
	forge.RunStore
	GetRepo(ctx context.Context, name string) (*forge.Repo, error)
	ListRepos(ctx context.Context) ([]*forge.Repo, error)
}

// File is one workflow file read from a repository. Err says why it could
// not be read (too large, unreadable); such a file fails its runs like one
// that does not parse, naming the file, and leaves the other files alone.
type File struct {
	Path string
	Data []byte
	Err  error
}

// Source reads repository content at a commit. Implemented over git by the
// server's wiring.
type Source interface {
	// WorkflowFiles returns .kod/workflows/*.toml at commit, sorted by path.
	// A file that cannot be read (too large) comes with File.Err set; the
	// error is for what fails the whole listing.
	WorkflowFiles(ctx context.Context, repo, commit string) ([]File, error)
	// Archive streams the tree at commit as a tar archive.
	Archive(ctx context.Context, repo, commit string, w io.Writer) error
}

// FileSource is what a Source may also do: read one file at a commit, for
// cache keys that hash files ({hash:FILE}). Without it such keys fail the
// run.
type FileSource interface {
	// ReadFile returns file (relative to the repository root) at commit;
	// an error wrapping fs.ErrNotExist when the commit has no such file.
	ReadFile(ctx context.Context, repo, commit, file string) ([]byte, error)
}

// Runner executes workflow runs. Create with New, then Start; Shutdown
// stops it.
type Runner struct {
	cfg     Config
	store   Store
	backend sandbox.Backend
	src     Source
	log     *slog.Logger
	// slots bound the step containers of every run together.
	slots *engine.Slots

	wake chan struct{}
	mu   sync.Mutex
	// active maps the id of every executing run to its cancel function.
	active map[string]context.CancelCauseFunc
	// busy holds repo id+"\x00"+branch of executing runs: one at a time each.
	busy map[string]bool
	// streams holds the live log view of every executing run.
	streams   map[string]*runStream
	runStarts notifier // a run started executing
	sched     *scheduler
	wg        sync.WaitGroup
	stop      context.CancelFunc
	stopped   chan struct{}
}

// New returns a runner; it does nothing until Start.
func New(cfg Config, store Store, backend sandbox.Backend, src Source, log *slog.Logger) *Runner {
	cfg.setDefaults()
	r := &Runner{
		cfg: cfg, store: store, backend: backend, src: src,
		log:     log.With("component", "runner"),
		wake:    make(chan struct{}, 1),
		active:  map[string]context.CancelCauseFunc{},
		busy:    map[string]bool{},
		streams: map[string]*runStream{},
		slots:   engine.NewSlots(cfg.MaxParallelSteps),
	}
	r.sched = r.newScheduler()
	return r
}

// Errors used as cancellation causes; their text ends up in run records.
var (
	errCancelled = errors.New("the run was cancelled")
	errShutdown  = errors.New("the server shut down while the run was running")
	errRestarted = "the server restarted while the run was running"
)

// Start recovers from a previous process (runs left "running" become failed
// with a restart reason, their logs are completed and their containers
// removed), applies the retention, registers schedules, then starts
// dispatching queued runs. It returns once recovery is done.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.recover(ctx); err != nil {
		return err
	}
	r.pruneAll(ctx)
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop = stop
	r.stopped = make(chan struct{})
	r.sched.start(loopCtx, r.cfg.ScheduleEvery)
	go r.loop(loopCtx)
	r.Wake()
	return nil
}

// Shutdown stops dispatching, cancels executing runs (they end failed with
// a shutdown reason after their containers are removed) and waits for them
// until ctx ends.
func (r *Runner) Shutdown(ctx context.Context) error {
	if r.stop == nil {
		return nil
	}
	r.stop()
	<-r.stopped
	r.sched.stop()
	r.mu.Lock()
	for _, cancel := range r.active {
		cancel(errShutdown)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("runs still stopping: %w", ctx.Err())
	}
}

// Wake asks the dispatcher to look at the queue.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.stopped)
	sweep := time.NewTicker(r.cfg.SweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			r.dispatch(ctx)
		case <-sweep.C:
			r.sweep(ctx)
			r.dispatch(ctx)
		}
	}
}

// dispatch starts queued runs in FIFO order while the concurrency limit
// allows, skipping runs whose repository and branch already have one
// executing.
func (r *Runner) dispatch(ctx context.Context) {
	queued, err := r.store.QueuedRuns(ctx)
	if err != nil {
		r.log.Error("reading the run queue", "err", err)
		return
	}
	for _, q := range queued {
		r.mu.Lock()
		full := len(r.active) >= r.cfg.MaxConcurrent
		key := q.RepoID + "\x00" + q.Branch // by id: a rename keeps the slot
		busy := r.busy[key]
		r.mu.Unlock()
		if full {
			return
		}
		if busy {
			continue
		}
		faultpoint.Hit(ctx, faultpoint.Queued, faultpoint.Site{Run: q.ID, Step: -1})
		// Not derived from ctx: stopping the dispatcher must not cancel runs
		// without a cause; Shutdown cancels them with errShutdown. Registered
		// before the claim, so a Cancel that finds the run claimed also
		// finds its cancel function.
		runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		r.mu.Lock()
		r.active[q.ID] = cancel
		r.mu.Unlock()
		run, err := r.store.UpdateRun(ctx, q.ID, func(x *forge.Run) error {
			if x.Status != forge.RunQueued {
				return errNotQueued
			}
			x.Status = forge.RunRunning
			x.StartedAt = forge.NowMillis()
			x.Result = &forge.Result{Steps: []forge.StepResult{}}
			return nil
		})
		if err != nil {
			cancel(nil)
			r.mu.Lock()
			delete(r.active, q.ID)
			r.mu.Unlock()
			if !errors.Is(err, errNotQueued) && !errors.Is(err, forge.ErrNotFound) {
				r.log.Error("claiming a queued run", "run", q.ID, "err", err)
			}
			continue
		}
		stream := &runStream{}
		r.mu.Lock()
		r.busy[key] = true
		r.streams[run.ID] = stream
		r.mu.Unlock()
		faultpoint.Hit(ctx, faultpoint.Dispatched, faultpoint.Site{Run: run.ID, Step: -1})
		r.runStarts.notify()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.execute(runCtx, run, stream)
			cancel(nil)
			r.mu.Lock()
			delete(r.active, run.ID)
			delete(r.busy, key)
			r.mu.Unlock()
			r.Wake()
		}()
	}
}

var errNotQueued = errors.New("run is no longer queued")

func (r *Runner) sweep(ctx context.Context) {
	removed, err := r.backend.Sweep(ctx, r.cfg.Instance, func(id string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, ok := r.active[id]
		return ok
	})
	if len(removed) > 0 {
		// Each run's own clean-up should have removed these: a leak.
		r.log.Warn("swept leftover objects of runs that are not running", "count", len(removed), "runs", removed)
	}
	if err != nil {
		r.log.Error("sweeping containers", "err", err)
	}
}

func (r *Runner) notifyDone(ctx context.Context, run *forge.Run) {
	if r.cfg.OnRunDone != nil && run != nil {
		r.cfg.OnRunDone(ctx, run)
	}
}

// finish moves x to a final state at now; the duration covers the time it
// was running (0 if it never started).
func finish(x *forge.Run, status forge.RunStatus, reason string) {
	now := forge.NowMillis()
	x.Status = status
	x.CompletedAt = now
	if reason != "" {
		x.Error = reason
	}
	if x.Result == nil {
		x.Result = &forge.Result{Steps: []forge.StepResult{}}
	}
	x.CurrentStep = nil
	x.Result.Success = status == forge.RunCompleted
	if x.StartedAt != 0 {
		x.Result.Duration = now - x.StartedAt
	}
}
