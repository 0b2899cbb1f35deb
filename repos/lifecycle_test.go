package repos_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
	"github.com/kod-forge/kod/webhook"
)

// env is the lifecycle over a real bbolt file and real bare repositories,
// with the real runner on the fake sandbox backend (nothing executes in a
// container) and the webhook dispatcher recording deliveries (not
// sending them).
type env struct {
	t        *testing.T
	store    *boltstore.Store
	svc      *repos.Service
	runner   *runner.Runner
	reposDir string
	done     chan *forge.Run

	gate    chan struct{} // steps block until it is closed (nil: they do not)
	mu      sync.Mutex
	started []string // repository of each step started, from the step's env
}

var (
	owner = &forge.Principal{TokenID: "owner", Permissions: []forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}}
	alice = &forge.Principal{TokenID: "alice1", Username: "alice", Permissions: []forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}}
)

const ciWorkflow = "[[steps]]\nname = \"build\"\nrun = \"true\"\n"

func newEnv(t *testing.T, gated bool) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, store: store, reposDir: filepath.Join(dir, "repos"), done: make(chan *forge.Run, 16)}
	if gated {
		e.gate = make(chan struct{})
	}
	log := slog.New(slog.DiscardHandler)
	fake := sandboxtest.New(func(ctx context.Context, step *sandbox.StepSpec, _ io.Writer) int {
		e.mu.Lock()
		e.started = append(e.started, envValue(step.Env, "KOD_REPO"))
		e.mu.Unlock()
		if e.gate != nil {
			select {
			case <-e.gate:
			case <-ctx.Done():
				return 1
			}
		}
		return 0
	})
	git := &gitsvc.Git{}
	hooks, err := webhook.New(webhook.Config{}, store, log)
	if err != nil {
		t.Fatal(err)
	}
	e.runner = runner.New(runner.Config{
		Instance: "t", DefaultImage: "img", LogsDir: filepath.Join(dir, "logs"), MaxConcurrent: 4,
		OnRunDone: func(_ context.Context, run *forge.Run) { e.done <- run },
	}, store, fake, &repos.Source{Git: git, ReposDir: e.reposDir}, log)
	t.Cleanup(func() { _ = e.runner.Shutdown(context.Background()) })
	e.svc = repos.New(repos.Config{
		ReposDir: e.reposDir, LogsDir: filepath.Join(dir, "logs"), HookBinary: "/bin/false",
		Store: store, Git: git, Runs: e.runner, Webhooks: hooks, Log: log,
	})
	return e
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// create makes repository name owned by owner.
func (e *env) create(name string) *forge.Repo {
	e.t.Helper()
	repo, err := e.svc.Create(context.Background(), name, owner)
	if err != nil {
		e.t.Fatal(err)
	}
	return repo
}

// commit moves branch of repository name to a new commit holding files
// (plumbing: no hooks run) and returns the ref update, as git's hooks
// would report it.
func (e *env) commit(name, branch string, files map[string]string) forge.RefUpdate {
	e.t.Helper()
	dir := filepath.Join(e.reposDir, name+".git")
	old := strings.TrimSpace(gitOut(e.t, dir, "for-each-ref", "--format=%(objectname)", "refs/heads/"+branch))
	if old == "" {
		old = gitsvc.ZeroOID
	}
	work := e.t.TempDir()
	gitOut(e.t, work, "init", "-q", "-b", "w")
	for p, content := range files {
		os.MkdirAll(filepath.Join(work, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(work, p), []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	gitOut(e.t, work, "add", "-A")
	gitOut(e.t, work, "commit", "-q", "--allow-empty", "-m", "c "+branch)
	gitOut(e.t, dir, "fetch", "-q", work, "+w:refs/heads/"+branch)
	return forge.RefUpdate{Old: old, New: strings.TrimSpace(gitOut(e.t, work, "rev-parse", "HEAD")), Ref: "refs/heads/" + branch}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return string(out)
}

// push runs the post-receive lifecycle for updates by p.
func (e *env) push(name string, p *forge.Principal, updates ...forge.RefUpdate) []string {
	return e.svc.PostReceive(context.Background(), &gitsvc.Push{Repo: name, Principal: p, Transport: "ssh"}, updates)
}

// wait returns the next run that ended.
func (e *env) wait() *forge.Run {
	e.t.Helper()
	select {
	case run := <-e.done:
		return run
	case <-time.After(30 * time.Second):
		e.t.Fatal("no run ended within 30s")
		return nil
	}
}

// eventually polls cond until it holds; the deadline only catches hangs.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPreReceiveRefusesAMixedPushAsAWhole: one update of a protected
// branch refuses the whole push of a collaborator, with Kod's message;
// the same updates without it pass, and the owner may push all of them.
func TestPreReceiveRefusesAMixedPushAsAWhole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.create("app")
	if _, err := e.store.UpdateRepo(ctx, "app", func(r *forge.Repo) error {
		r.ProtectedBranches = []string{"main"}
		r.Collaborators = []forge.Collaborator{{Username: "alice"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	feature := forge.RefUpdate{Old: gitsvc.ZeroOID, New: strings.Repeat("a", 40), Ref: "refs/heads/feature"}
	main := forge.RefUpdate{Old: strings.Repeat("b", 40), New: strings.Repeat("c", 40), Ref: "refs/heads/main"}
	push := func(p *forge.Principal, u ...forge.RefUpdate) error {
		return e.svc.PreReceive(ctx, &gitsvc.Push{Repo: "app", Principal: p, Transport: "http"}, u)
	}
	err := push(alice, feature, main)
	if msg, ok := forge.UserMessage(err); !ok || !strings.Contains(msg, "branch 'main' is protected") {
		t.Errorf("mixed push by a collaborator: %v", err)
	}
	if err := push(alice, feature); err != nil {
		t.Errorf("the unprotected branch alone: %v", err)
	}
	if err := push(owner, feature, main); err != nil {
		t.Errorf("the owner's push: %v", err)
	}
}

// TestFirstPushChoosesTheDefaultBranch: the owner's first push of a branch
// other than main makes it the default branch and says so; a later push of
// main does not move it.
func TestFirstPushChoosesTheDefaultBranch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.create("app")
	msgs := e.push("app", owner, e.commit("app", "develop", nil))
	if !slices.Contains(msgs, "kod: default branch set to develop") {
		t.Errorf("messages %q", msgs)
	}
	dir := filepath.Join(e.reposDir, "app.git")
	if head := strings.TrimSpace(gitOut(t, dir, "symbolic-ref", "HEAD")); head != "refs/heads/develop" {
		t.Errorf("HEAD = %s after the first push", head)
	}
	e.push("app", owner, e.commit("app", "main", nil))
	if head := strings.TrimSpace(gitOut(t, dir, "symbolic-ref", "HEAD")); head != "refs/heads/develop" {
		t.Errorf("HEAD = %s after a later push of main", head)
	}
}

// TestOneRunPerPushedBranchWithWorkflows: a push of three branches queues
// one run for each branch whose commit has workflow files, at that commit;
// a deletion and a tag queue nothing.
func TestOneRunPerPushedBranchWithWorkflows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.create("app")
	wf := map[string]string{".kod/workflows/ci.toml": ciWorkflow}
	a, b, c := e.commit("app", "a", wf), e.commit("app", "b", wf), e.commit("app", "c", map[string]string{"README": "no workflows"})
	tag := forge.RefUpdate{Old: gitsvc.ZeroOID, New: a.New, Ref: "refs/tags/v1"}
	gone := forge.RefUpdate{Old: a.New, New: gitsvc.ZeroOID, Ref: "refs/heads/old"}
	e.push("app", owner, a, b, c, tag, gone)
	runs, err := e.store.ListRuns(ctx, "app", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range runs {
		got[r.Branch] = r.Commit
		if r.Status != forge.RunQueued || r.Trigger != forge.TriggerPush || r.TokenID != owner.TokenID {
			t.Errorf("run %+v", r)
		}
	}
	if len(runs) != 2 || got["a"] != a.New || got["b"] != b.New {
		t.Errorf("runs by branch %v, want a=%s b=%s", got, a.New, b.New)
	}
}

// TestPushDeliveriesRecordedAfterTheRefsMoved: pre-receive records
// nothing; post-receive records one push delivery per branch, naming the
// new commit and the run queued for it.
func TestPushDeliveriesRecordedAfterTheRefsMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.create("app")
	hook := &forge.Webhook{ID: forge.NewID(), RepoName: "app", URL: "http://127.0.0.1:1/hook", Events: []forge.WebhookEvent{forge.EventPush}, CreatedAt: forge.NowMillis()}
	if err := e.store.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	main := e.commit("app", "main", map[string]string{".kod/workflows/ci.toml": ciWorkflow})
	docs := e.commit("app", "docs", nil)
	if err := e.svc.PreReceive(ctx, &gitsvc.Push{Repo: "app", Principal: owner}, []forge.RefUpdate{main, docs}); err != nil {
		t.Fatal(err)
	}
	if ds, _ := e.store.ListDeliveries(ctx, hook.ID, 0); len(ds) != 0 {
		t.Fatalf("%d deliveries recorded before the refs moved", len(ds))
	}
	e.push("app", owner, main, docs)
	runs, _ := e.store.ListRuns(ctx, "app", 0)
	ds, err := e.store.ListDeliveries(ctx, hook.ID, 0)
	if err != nil || len(ds) != 2 || len(runs) != 1 {
		t.Fatalf("deliveries %d (%v), runs %d", len(ds), err, len(runs))
	}
	bodies := map[string]struct {
		Commit        string  `json:"commit"`
		WorkflowRunID *string `json:"workflowRunId"`
	}{}
	for _, d := range ds {
		var body struct {
			Branch        string  `json:"branch"`
			Commit        string  `json:"commit"`
			WorkflowRunID *string `json:"workflowRunId"`
		}
		if err := json.Unmarshal(d.Payload, &body); err != nil || d.Status != forge.DeliveryPending {
			t.Fatalf("delivery %+v: %v", d, err)
		}
		bodies[body.Branch] = struct {
			Commit        string  `json:"commit"`
			WorkflowRunID *string `json:"workflowRunId"`
		}{body.Commit, body.WorkflowRunID}
	}
	if m := bodies["main"]; m.Commit != main.New || m.WorkflowRunID == nil || *m.WorkflowRunID != runs[0].ID {
		t.Errorf("main's delivery: %+v, want commit %s run %s", m, main.New, runs[0].ID)
	}
	if d := bodies["docs"]; d.Commit != docs.New || d.WorkflowRunID != nil {
		t.Errorf("docs's delivery: %+v", d)
	}
}

// TestRenameWhileARunIsQueued: a queued run follows its repository to the
// new name and runs there.
func TestRenameWhileARunIsQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.create("old")
	e.push("old", owner, e.commit("old", "main", map[string]string{".kod/workflows/ci.toml": ciWorkflow}))
	if _, err := e.svc.Rename(ctx, "old", "new"); err != nil {
		t.Fatal(err)
	}
	if err := e.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	run := e.wait()
	if run.Status != forge.RunCompleted || run.RepoName != "new" {
		t.Errorf("run after the rename: %s in %q", run.Status, run.RepoName)
	}
	if runs, _ := e.store.ListRuns(ctx, "new", 0); len(runs) != 1 {
		t.Errorf("runs listed under the new name: %d", len(runs))
	}
}

// TestRenameWhileARunIsExecuting: the executing run finishes, recorded
// under the new name.
func TestRenameWhileARunIsExecuting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx := context.Background()
	e.create("old")
	if err := e.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.push("old", owner, e.commit("old", "main", map[string]string{".kod/workflows/ci.toml": ciWorkflow}))
	eventually(t, "the step to start", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.started) == 1 })
	if _, err := e.svc.Rename(ctx, "old", "new"); err != nil {
		t.Fatal(err)
	}
	close(e.gate)
	run := e.wait()
	if run.Status != forge.RunCompleted || run.RepoName != "new" {
		t.Errorf("run after the rename: %s in %q", run.Status, run.RepoName)
	}
	if stored, err := e.store.GetRun(ctx, run.ID); err != nil || stored.RepoName != "new" || stored.Status != forge.RunCompleted {
		t.Errorf("stored run: %+v %v", stored, err)
	}
}

// TestRenameKeepsTheExecutingRunsBranchSlot: a push of the same branch
// after a rename waits for the run still executing from before it (the
// per-branch slot belongs to the repository, not to its name), while a
// push of another branch goes ahead; the waiting run starts once the
// first has finished.
func TestRenameKeepsTheExecutingRunsBranchSlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx := context.Background()
	e.create("old")
	if err := e.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wf := map[string]string{".kod/workflows/ci.toml": ciWorkflow}
	e.push("old", owner, e.commit("old", "main", wf))
	eventually(t, "the first run's step to start", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.started) == 1 })
	if _, err := e.svc.Rename(ctx, "old", "new"); err != nil {
		t.Fatal(err)
	}
	// One push: main first, then other. The dispatcher takes the queue in
	// order, so once other's step has started, main's run was passed over.
	e.push("new", owner, e.commit("new", "main", wf), e.commit("new", "other", wf))
	eventually(t, "the other branch's step to start", func() bool { e.mu.Lock(); defer e.mu.Unlock(); return len(e.started) == 2 })
	runs, err := e.store.ListRuns(ctx, "new", 0) // newest first: other, main (second), main (first)
	if err != nil || len(runs) != 3 {
		t.Fatalf("runs: %d %v", len(runs), err)
	}
	first, second, other := runs[2], runs[1], runs[0]
	if first.Status != forge.RunRunning || second.Status != forge.RunQueued || second.Branch != "main" || other.Status != forge.RunRunning || other.Branch != "other" {
		t.Fatalf("while the first run executes: first %s, second main %s, other %s (%s)", first.Status, second.Status, other.Status, other.Branch)
	}
	close(e.gate)
	ended := map[string]*forge.Run{}
	for range 3 {
		run := e.wait()
		ended[run.ID] = run
	}
	a, b := ended[first.ID], ended[second.ID]
	if a == nil || b == nil || a.Status != forge.RunCompleted || b.Status != forge.RunCompleted || a.RepoName != "new" || b.RepoName != "new" {
		t.Fatalf("ended: %+v", ended)
	}
	if b.StartedAt < a.CompletedAt {
		t.Errorf("the second run of main started at %d, before the first ended at %d", b.StartedAt, a.CompletedAt)
	}
}

// TestPushInFlightDuringRename: hooks find the pushed repository by id, so
// a push that began under the old name is judged and recorded under the
// new one.
func TestPushInFlightDuringRename(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	repo := e.create("old")
	push := &gitsvc.Push{RepoID: repo.ID, Repo: "old", Principal: owner, Transport: "http"}
	if _, err := e.svc.Rename(ctx, "old", "new"); err != nil {
		t.Fatal(err)
	}
	main := e.commit("new", "main", map[string]string{".kod/workflows/ci.toml": ciWorkflow})
	if err := e.svc.PreReceive(ctx, push, []forge.RefUpdate{main}); err != nil {
		t.Fatalf("pre-receive after the rename: %v", err)
	}
	e.svc.PostReceive(ctx, push, []forge.RefUpdate{main})
	if runs, _ := e.store.ListRuns(ctx, "new", 0); len(runs) != 1 || runs[0].RepoName != "new" || runs[0].Commit != main.New {
		t.Errorf("runs after the push: %+v", runs)
	}
}

// TestSetDefaultBranch: only an existing branch with a valid name may
// become the default branch; HEAD then names it.
func TestSetDefaultBranch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	repo := e.create("app")
	e.commit("app", "main", nil)
	e.commit("app", "release", nil)
	for branch, want := range map[string]string{"-x": "Invalid branch name", "nope": "Branch 'nope' does not exist"} {
		if msg, _ := forge.UserMessage(e.svc.CheckBranch(ctx, repo, branch)); msg != want {
			t.Errorf("CheckBranch(%q) = %q, want %q", branch, msg, want)
		}
	}
	if err := e.svc.CheckBranch(ctx, repo, "release"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetDefaultBranch(ctx, repo, "release", owner); err != nil {
		t.Fatal(err)
	}
	if head := strings.TrimSpace(gitOut(t, e.svc.Dir(repo), "symbolic-ref", "HEAD")); head != "refs/heads/release" {
		t.Errorf("HEAD = %s", head)
	}
}
