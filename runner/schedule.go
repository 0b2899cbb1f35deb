package runner

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kod-forge/kod/forge"
)

// Heads is implemented by a Source that can name a repository's default
// branch; `[on] schedule` needs it (with a Source without it, schedules
// are not run).
type Heads interface {
	// DefaultBranch returns the branch the repository's HEAD names and its
	// commit; ok is false when that branch has no commit yet.
	DefaultBranch(ctx context.Context, repo string) (branch, commit string, ok bool, err error)
}

// fireTimeout bounds the work of one schedule firing (git reads, queueing).
const fireTimeout = 30 * time.Second

// scheduler runs the `[on] schedule` cron entries of the workflow files on
// every repository's default branch. Its entries are brought in line with
// the repositories (reconcile) at start, after every push and every
// Config.ScheduleEvery, so pushes, HEAD changes, renames, deletions and
// imports all take effect without hooks of their own.
type scheduler struct {
	r     *Runner
	heads Heads // nil: schedules are off
	cron  *cron.Cron

	mu    sync.Mutex // serialises reconciles
	repos map[string]*repoSchedules
	done  chan struct{} // closed when the reconcile loop ended
}

// repoSchedules are the cron entries registered for one repository.
type repoSchedules struct {
	key     string // branch@commit the entries were read from
	entries []cron.EntryID
}

func (r *Runner) newScheduler() *scheduler {
	heads, _ := r.src.(Heads)
	return &scheduler{r: r, heads: heads, cron: cron.New(), repos: map[string]*repoSchedules{}}
}

// start registers the schedules of every repository, then keeps them in
// line every period until ctx ends, off the dispatcher's goroutine (with
// many repositories a reconcile takes a while).
func (s *scheduler) start(ctx context.Context, every time.Duration) {
	s.cron.Start()
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.reconcile(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop waits for the reconcile loop (its ctx must have ended), stops
// firing and waits for firings in progress.
func (s *scheduler) stop() {
	if s.done != nil {
		<-s.done
	}
	<-s.cron.Stop().Done()
}

// reconcile registers the schedules of every repository and drops those of
// repositories that are gone.
func (s *scheduler) reconcile(ctx context.Context) {
	if s.heads == nil {
		return
	}
	repos, err := s.r.store.ListRepos(ctx)
	if err != nil {
		s.r.log.Error("listing repositories for schedules", "err", err)
		return
	}
	seen := make(map[string]bool, len(repos))
	for _, repo := range repos {
		seen[repo.Name] = true
		s.reconcileRepo(ctx, repo.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, rs := range s.repos {
		if !seen[name] {
			s.remove(rs)
			delete(s.repos, name)
		}
	}
}

// reconcileRepo (re)registers repo's schedules when its default branch
// moved since they were read.
func (s *scheduler) reconcileRepo(ctx context.Context, repo string) {
	if s.heads == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	branch, commit, ok, err := s.heads.DefaultBranch(ctx, repo)
	if err != nil {
		s.r.log.Warn("reading the default branch for schedules", "repo", repo, "err", err)
		return
	}
	key := branch + "@" + commit
	old := s.repos[repo]
	if old != nil && old.key == key {
		return
	}
	rs := &repoSchedules{key: key}
	if ok {
		files, err := s.r.src.WorkflowFiles(ctx, repo, commit)
		if err != nil {
			s.r.log.Warn("reading workflow files for schedules", "repo", repo, "err", err)
			return
		}
		rs.entries = s.add(ctx, repo, files, rs)
	}
	if old != nil {
		s.remove(old)
	}
	s.repos[repo] = rs
}

// add registers a cron entry per `[on] schedule` expression of files, as
// part of rs.
// The files are parsed within ParseTimeout in all; a file that takes
// longer has no schedule (its pushes report why).
func (s *scheduler) add(ctx context.Context, repo string, files []File, rs *repoSchedules) []cron.EntryID {
	ctx, cancel := context.WithTimeout(ctx, ParseTimeout)
	defer cancel()
	var ids []cron.EntryID
	for _, f := range files {
		wf, err := parseWithin(ctx, f, s.r.parseOptions())
		if err != nil {
			s.r.log.Warn("workflow file without schedules: it does not parse", "repo", repo, "err", err)
			continue // its pushes report the error; other files keep their schedules
		}
		for _, expr := range wf.On.Schedule {
			sched, err := cron.ParseStandard(expr)
			if err != nil {
				s.r.log.Warn("invalid schedule", "repo", repo, "file", f.Path, "schedule", expr, "err", err)
				continue
			}
			file := f.Path
			ids = append(ids, s.cron.Schedule(sched, cron.FuncJob(func() { s.fire(repo, file, rs) })))
			s.r.log.Info("schedule registered", "repo", repo, "file", file, "schedule", expr)
		}
	}
	return ids
}

func (s *scheduler) remove(rs *repoSchedules) {
	for _, id := range rs.entries {
		s.cron.Remove(id)
	}
}

// fire queues a scheduled run of file at the head of repo's default
// branch, unless a scheduled run of it is still queued (a slow queue must
// not pile up copies of the same schedule). It holds the reconcile lock and
// does nothing once rs is no longer repo's registered schedules, so once a
// reconcile that dropped a schedule returned (a push removed it), no firing
// that began before still queues a run of it.
func (s *scheduler) fire(repo, file string, rs *repoSchedules) {
	ctx, cancel := context.WithTimeout(context.Background(), fireTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos[repo] != rs {
		return // replaced or dropped since the firing began
	}
	if _, err := s.r.store.GetRepo(ctx, repo); err != nil {
		return // deleted or renamed since the last reconcile
	}
	branch, commit, ok, err := s.heads.DefaultBranch(ctx, repo)
	if err != nil || !ok {
		if err != nil && !errors.Is(err, forge.ErrNotFound) {
			s.r.log.Warn("scheduled run: reading the default branch", "repo", repo, "err", err)
		}
		return
	}
	queued, err := s.r.store.QueuedRuns(ctx)
	if err != nil {
		s.r.log.Error("scheduled run: reading the queue", "repo", repo, "err", err)
		return
	}
	files := []string{file}
	for _, q := range queued {
		if q.RepoName == repo && q.Trigger == forge.TriggerSchedule && slices.Equal(q.Files, files) {
			s.r.log.Info("scheduled run skipped: the previous one is still queued", "repo", repo, "file", file, "queued", q.ID)
			return
		}
	}
	_, err = s.r.Enqueue(ctx, Request{Repo: repo, Branch: branch, Commit: commit, Trigger: forge.TriggerSchedule, Files: files})
	if err != nil {
		s.r.log.Error("queueing a scheduled run", "repo", repo, "file", file, "err", err)
	}
}
