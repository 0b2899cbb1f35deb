package cache

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

const path = "/cache"

type fixture struct {
	t        *testing.T
	d        *docker.Docker
	db       *boltstore.Store
	m        *Manager
	instance string
}

func newFixture(t *testing.T, limit int64) *fixture {
	t.Helper()
	d := dockertest.Require(t)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	instance := dockertest.NewID(t)
	t.Cleanup(func() {
		_, _ = d.PruneCaches(context.Background(), instance, func(string) bool { return false })
		dockertest.Clean(t, d, instance)
	})
	for _, name := range []string{"app", "other"} {
		if err := db.CreateRepo(context.Background(), &forge.Repo{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	m := New(Config{Records: db, Repos: db, Backend: d, Instance: instance, Limit: limit})
	return &fixture{t: t, d: d, db: db, m: m, instance: instance}
}

func (f *fixture) repoID(name string) string {
	r, err := f.db.GetRepo(context.Background(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	return r.ID
}

type out struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (o *out) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// run is one workflow of repo on branch (default branch main) with a cache
// of key at /cache, running script; the cache is saved when it exits 0.
func (f *fixture) run(repo, branch, key, script string) string {
	f.t.Helper()
	ctx := f.t.Context()
	run := &sandbox.RunSpec{ID: dockertest.NewID(f.t), Instance: f.instance, Network: sandbox.NetworkNone}
	defer f.d.DestroyRun(context.Background(), run)
	if err := f.d.SetupRun(ctx, run); err != nil {
		f.t.Fatal(err)
	}
	r, err := f.m.Restore(ctx, run, Want{RepoID: f.repoID(repo), Branch: branch, DefaultBranch: "main", Key: key, Path: path, Image: dockertest.Image})
	if err != nil {
		f.t.Fatalf("Restore: %v", err)
	}
	step := &sandbox.StepSpec{Index: 0, Image: dockertest.Image, Pull: sandbox.PullNever,
		Command: []string{"/bin/sh", "-c", script}, Caches: []sandbox.CacheMount{r.Mount()}}
	var o out
	if err := f.d.StartStep(ctx, run, step, &o); err != nil {
		f.t.Fatal(err)
	}
	st, err := f.d.WaitStep(ctx, run, step)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.d.DestroyStep(ctx, run, step); err != nil {
		f.t.Fatal(err)
	}
	if st.ExitCode == 0 {
		err = f.m.Save(ctx, run, r)
	} else {
		err = f.m.Discard(ctx, run, r)
	}
	if err != nil {
		f.t.Fatalf("save/discard: %v", err)
	}
	return o.buf.String()
}

// TestBranchScopes: a run sees what the previous successful run of its
// branch wrote; a new branch starts from the default branch's cache and
// its writes never reach the default branch; a failed run changes
// nothing; another repository sees none of it.
func TestBranchScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	read := "cat /cache/* 2>/dev/null | tr '\\n' ' '"
	f.run("app", "main", "k", "echo main1 > /cache/a")
	if got := f.run("app", "main", "k", read); got != "main1 " {
		t.Errorf("second run on main sees %q", got)
	}
	if got := f.run("app", "feat", "k", read+"; echo feat > /cache/b"); got != "main1 " {
		t.Errorf("first run on feat sees %q, want the default branch's", got)
	}
	if got := f.run("app", "feat", "k", read); got != "main1 feat " {
		t.Errorf("second run on feat sees %q", got)
	}
	if got := f.run("app", "main", "k", read); got != "main1 " {
		t.Errorf("main after feat wrote sees %q", got)
	}
	f.run("app", "main", "k", "echo broken > /cache/a; exit 1")
	if got := f.run("app", "main", "k", read); got != "main1 " {
		t.Errorf("main after a failed run sees %q", got)
	}
	if got := f.run("other", "main", "k", read); got != "" {
		t.Errorf("another repository sees %q", got)
	}
	if got := f.run("app", "main", "other-key", read); got != "" {
		t.Errorf("another key sees %q", got)
	}
	list, _ := f.db.ListCaches(t.Context(), f.repoID("app"))
	if len(list) != 2 {
		t.Errorf("records of app: %d, want main/k and feat/k", len(list))
	}
}

// TestEvictionAndDeletion: over the limit the least recently used cache
// goes with its layers; Delete and DeleteRepo remove layers no record
// needs; Prune removes what no record names.
func TestEvictionAndDeletion(t *testing.T) {
	t.Parallel()
	// Each cache below is about 100 KiB; two fit.
	f := newFixture(t, 250<<10)
	fill := "dd if=/dev/zero of=/cache/f bs=1024 count=100 2>/dev/null"
	f.run("app", "main", "one", fill)
	f.run("app", "main", "two", fill)
	f.run("app", "main", "one", "cat /cache/f >/dev/null") // one is now the most recently used
	f.run("app", "main", "three", fill)
	ctx := t.Context()
	keys := func() string {
		list, _ := f.db.ListCaches(ctx, f.repoID("app"))
		var k []string
		for _, c := range list {
			k = append(k, c.Key)
		}
		return strings.Join(k, " ")
	}
	if got := keys(); got != "one three" {
		t.Errorf("after eviction: %q, want one three", got)
	}
	if got := f.run("app", "main", "two", "ls /cache"); got != "" {
		t.Errorf("evicted cache still seen: %q", got)
	}
	if err := f.m.Delete(ctx, f.repoID("app"), "main", "three"); err != nil {
		t.Fatal(err)
	}
	id := f.repoID("app")
	caches, _ := f.db.ListCaches(ctx, id)
	if err := f.db.DeleteRepo(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	f.m.DeleteRepo(ctx, caches)
	n, err := f.m.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("Prune removed %d layers that Save, eviction, Delete and DeleteRepo should have", n)
	}
	left, err := f.d.PruneCaches(ctx, f.instance, func(string) bool { return true })
	if err != nil || len(left) != 0 {
		t.Errorf("PruneCaches keeping all: %v %v", left, err)
	}
	// Nothing of the instance is left: every layer is gone.
	all, _ := f.d.PruneCaches(ctx, f.instance, func(string) bool { return false })
	if len(all) != 0 {
		t.Errorf("layers left: %v", all)
	}
}
