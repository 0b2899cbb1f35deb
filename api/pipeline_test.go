package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner/artifact"
)

// TestCachesRoutes: caches are listed without their layers, deleted per
// branch or on every branch, 404 when there is none.
func TestCachesRoutes(t *testing.T) {
	e := newEnv(t)
	e.newRepo("app", admin)
	ctx := context.Background()
	repo, _ := e.store.GetRepo(ctx, "app")
	for _, b := range []string{"main", "feat"} {
		if err := e.store.PutCache(ctx, &forge.Cache{RepoID: repo.ID, Branch: b, Key: "go/x", Size: 42, CreatedAt: 1, LastUsedAt: 2, Layers: []string{"l"}}); err != nil {
			t.Fatal(err)
		}
	}
	body := e.must("GET", "/repos/app/caches", bearer(admin), "", 200)
	if strings.Contains(body, "layers") || !strings.Contains(body, `{"key":"go/x","branch":"feat","size":42,"createdAt":1,"lastUsedAt":2}`) {
		t.Errorf("list: %s", body)
	}
	e.must("DELETE", "/repos/app/caches/go/x?branch=feat", bearer(admin), "", 204)
	e.must("DELETE", "/repos/app/caches/go/x?branch=feat", bearer(admin), "", 404)
	e.must("DELETE", "/repos/app/caches/go/x", bearer(admin), "", 204)
	if body := e.must("GET", "/repos/app/caches", bearer(admin), "", 200); body != "[]\n" && body != "[]" {
		t.Errorf("after deletes: %s", body)
	}
	reader := e.token([]forge.Permission{forge.PermWorkflowRead}, "")
	e.must("GET", "/repos/app/caches", bearer(reader), "", 200)
	e.must("DELETE", "/repos/app/caches/k", bearer(reader), "", 403)
}

// TestArtifactRoutes: the list and a download with its bytes, length,
// disposition and sha256, for a name with slashes; unknown names are 404.
func TestArtifactRoutes(t *testing.T) {
	var arts *artifact.Store
	e := newEnvWith(t, func(d *api.Deps, _ *repos.Config) {
		arts = &artifact.Store{Dir: filepath.Join(t.TempDir(), "artifacts"), Records: d.Store}
		d.Artifacts = arts
	})
	e.newRepo("app", admin)
	ctx := context.Background()
	run := &forge.Run{ID: forge.NewID(), RepoName: "app", Status: forge.RunCompleted}
	if err := e.store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "dist/app v1.bin", Typeflag: tar.TypeReg, Size: 5, Mode: 0o644})
	tw.Write([]byte("hello"))
	tw.Close()
	if _, err := arts.Save(ctx, run.ID, artifact.Step{Name: "build"}, 7, &buf); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	json.Unmarshal([]byte(e.must("GET", "/repos/app/workflows/"+run.ID+"/artifacts", bearer(admin), "", 200)), &list)
	sum := sha256.Sum256([]byte("hello"))
	if len(list) != 1 || list[0]["name"] != "dist/app v1.bin" || list[0]["sha256"] != hex.EncodeToString(sum[:]) || list[0]["step"] != "build" || list[0]["size"] != 5.0 {
		t.Errorf("list: %v", list)
	}
	code, body, h := e.req("GET", "/repos/app/workflows/"+run.ID+"/artifacts/dist/app%20v1.bin", bearer(admin), "")
	if code != 200 || body != "hello" || h.Get("Content-Length") != "5" || h.Get("Content-Disposition") != `attachment; filename="app v1.bin"` {
		t.Errorf("download: %d %q %v", code, body, h)
	}
	e.must("GET", "/repos/app/workflows/"+run.ID+"/artifacts/dist/other", bearer(admin), "", 404)
	e.must("GET", "/repos/app/workflows/"+run.ID+"/artifacts/dist/../../etc/passwd", bearer(admin), "", 404)
	e.must("GET", "/repos/app/workflows/nope/artifacts", bearer(admin), "", 404)
}

// TestRerunRoute: a whole re-run and a failed-only one queue runs of the
// same commit, branch and files with trigger rerun; 409 while the run is
// queued or running and for a failed-only re-run of a successful run.
func TestRerunRoute(t *testing.T) {
	e := newEnv(t)
	e.newRepo("app", admin)
	ctx := context.Background()
	mk := func(status forge.RunStatus, steps ...forge.StepResult) *forge.Run {
		r := &forge.Run{ID: forge.NewID(), RepoName: "app", Branch: "feat", Commit: strings.Repeat("a", 40), Files: []string{".kod/workflows/a.toml", ".kod/workflows/b.toml"}, Status: status, Result: &forge.Result{Steps: steps}}
		if err := e.store.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	failed := mk(forge.RunFailed, forge.StepResult{ID: "a.s", Name: "s", Workflow: "a.toml", Success: true}, forge.StepResult{ID: "b.s", Name: "s", Workflow: "b.toml"})
	var got struct {
		ID, Status, RerunOf string
	}
	json.Unmarshal([]byte(e.must("POST", "/repos/app/workflows/"+failed.ID+"/rerun", bearer(admin), `{"failedOnly":true}`, 202)), &got)
	if got.Status != "queued" || got.RerunOf != failed.ID || got.ID == "" {
		t.Errorf("failed-only re-run: %+v", got)
	}
	run, err := e.store.GetRun(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Trigger != forge.TriggerRerun || run.Commit != failed.Commit || run.Branch != "feat" || len(run.Files) != 2 || strings.Join(run.Reuse, ",") != "a" || run.RerunOf != failed.ID {
		t.Errorf("re-run record: %+v", run)
	}
	e.must("POST", "/repos/app/workflows/"+got.ID+"/rerun", bearer(admin), "", 409) // queued
	json.Unmarshal([]byte(e.must("POST", "/repos/app/workflows/"+failed.ID+"/rerun", bearer(admin), "", 202)), &got)
	if run, _ := e.store.GetRun(ctx, got.ID); run == nil || len(run.Reuse) != 0 {
		t.Errorf("whole re-run reuses: %+v", run)
	}
	ok := mk(forge.RunCompleted, forge.StepResult{ID: "a.s", Name: "s", Workflow: "a.toml", Success: true})
	e.must("POST", "/repos/app/workflows/"+ok.ID+"/rerun", bearer(admin), `{"failedOnly":true}`, 409)
	e.must("POST", "/repos/app/workflows/"+ok.ID+"/rerun", bearer(admin), `{"failedOnly":"yes"}`, 400)
	running := mk(forge.RunRunning)
	e.must("POST", "/repos/app/workflows/"+running.ID+"/rerun", bearer(admin), `{}`, 409)
}

// dropper records what repository deletion hands to the cache manager.
type dropper struct {
	store  forge.CacheStore
	layers []string
}

func (d *dropper) ForgetRepo(ctx context.Context, repoID string) func() {
	list, _ := d.store.ListCaches(ctx, repoID)
	return func() {
		for _, c := range list {
			d.layers = append(d.layers, c.Layers...)
		}
	}
}

// TestRepoDeleteTakesArtifactsAndCaches: deleting a repository removes its
// runs' artifact files and records and hands its caches' layers to the
// cache manager once the records are gone.
func TestRepoDeleteTakesArtifactsAndCaches(t *testing.T) {
	var arts *artifact.Store
	drop := &dropper{}
	e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) {
		arts = &artifact.Store{Dir: filepath.Join(t.TempDir(), "artifacts"), Records: d.Store}
		d.Artifacts = arts
		rc.ArtifactsDir = arts.Dir
		drop.store = d.Store
		rc.Caches = drop
	})
	e.newRepo("app", admin)
	ctx := context.Background()
	repo, _ := e.store.GetRepo(ctx, "app")
	run := &forge.Run{ID: forge.NewID(), RepoName: "app", Status: forge.RunCompleted}
	if err := e.store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a.txt", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	tw.Write([]byte("x"))
	tw.Close()
	if _, err := arts.Save(ctx, run.ID, artifact.Step{Name: "s"}, 1, &buf); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutCache(ctx, &forge.Cache{RepoID: repo.ID, Branch: "main", Key: "k", Layers: []string{"kod-cl-x-0"}}); err != nil {
		t.Fatal(err)
	}
	e.must("DELETE", "/repos/app", bearer(admin), "", 204)
	if _, err := os.Stat(filepath.Join(arts.Dir, run.ID)); !os.IsNotExist(err) {
		t.Errorf("artifact files of the deleted repository's run: %v", err)
	}
	if list, _ := e.store.ListArtifacts(ctx, run.ID); len(list) != 0 {
		t.Errorf("artifact records left: %v", list)
	}
	if strings.Join(drop.layers, ",") != "kod-cl-x-0" {
		t.Errorf("layers handed to the cache manager: %v", drop.layers)
	}
	if list, _ := e.store.ListCaches(ctx, repo.ID); len(list) != 0 {
		t.Errorf("cache records left: %v", list)
	}
}
