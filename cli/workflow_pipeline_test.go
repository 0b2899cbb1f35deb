package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// pipelineAPI answers the artifact, cache and re-run routes the way the
// server does and records the requests.
func pipelineAPI(t *testing.T) (*httptest.Server, func() []string) {
	var mu sync.Mutex
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		mu.Unlock()
		switch r.Method + " " + r.URL.EscapedPath() {
		case "GET /repos/app/workflows/r1/artifacts":
			writeJSONT(w, 200, []map[string]any{{"name": "dist/app v1.bin", "size": 5, "step": "build", "stepIndex": 1, "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "createdAt": 1}})
		case "GET /repos/app/workflows/r1/artifacts/dist/app%20v1.bin":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "GET /repos/app/workflows/r1/artifacts/short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hel")
		case "POST /repos/app/workflows/r1/rerun":
			writeJSONT(w, 202, map[string]any{"id": "r2", "status": "queued", "rerunOf": "r1"})
		case "GET /repos/app/caches":
			writeJSONT(w, 200, []map[string]any{{"key": "go-abc", "branch": "main", "size": 1 << 20, "createdAt": 1, "lastUsedAt": fakeNow.UnixMilli() - 3600_000}})
		case "DELETE /repos/app/caches/go-abc":
			w.WriteHeader(204)
		default:
			fail(w, 404, "Not found")
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), calls...) }
}

// TestPipelineCommands: artifacts are listed and downloaded (to the name's
// last component, -o FILE, -o -; a short answer leaves no file), re-runs
// send failedOnly, caches are listed and deleted per branch.
func TestPipelineCommands(t *testing.T) {
	srv, calls := pipelineAPI(t)
	env := map[string]string{"KOD_SERVER_URL": srv.URL, "KOD_API_TOKEN": "t"}
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })

	res := runCLI(t, nil, env, "", "workflow", "artifacts", "app", "r1")
	if res.code != 0 || !strings.Contains(res.stdout, "dist/app v1.bin") || !strings.Contains(res.stdout, "5 B") || !strings.Contains(res.stdout, "2cf24dba5fb0") {
		t.Errorf("artifacts: %+v", res)
	}
	res = runCLI(t, nil, env, "", "workflow", "download", "app", "r1", "dist/app v1.bin")
	if b, _ := os.ReadFile(filepath.Join(dir, "app v1.bin")); res.code != 0 || string(b) != "hello" {
		t.Errorf("download: %+v, file %q", res, b)
	}
	res = runCLI(t, nil, env, "", "workflow", "download", "app", "r1", "dist/app v1.bin", "-o", filepath.Join(dir, "x.bin"))
	if b, _ := os.ReadFile(filepath.Join(dir, "x.bin")); res.code != 0 || string(b) != "hello" {
		t.Errorf("download -o: %+v, file %q", res, b)
	}
	if res = runCLI(t, nil, env, "", "workflow", "download", "app", "r1", "dist/app v1.bin", "-o", "-"); res.stdout != "hello" {
		t.Errorf("download -o -: %+v", res)
	}
	res = runCLI(t, nil, env, "", "workflow", "download", "app", "r1", "short")
	if _, err := os.Stat(filepath.Join(dir, "short")); res.code == 0 || err == nil {
		t.Errorf("short download: %+v, file left: %v", res, err)
	}
	if res = runCLI(t, nil, env, "", "workflow", "download", "app", "r1", "nope"); res.code != 1 || !strings.Contains(res.stderr, "Not found") {
		t.Errorf("missing artifact: %+v", res)
	}
	res = runCLI(t, nil, env, "", "workflow", "rerun", "app", "r1", "--failed")
	if res.code != 0 || !strings.Contains(res.stdout, "Run r2 queued (re-run of r1)") {
		t.Errorf("rerun: %+v", res)
	}
	res = runCLI(t, nil, env, "", "workflow", "caches", "app")
	if res.code != 0 || !strings.Contains(res.stdout, "go-abc") || !strings.Contains(res.stdout, "1 MiB") || !strings.Contains(res.stdout, "hour") {
		t.Errorf("caches: %+v", res)
	}
	res = runCLI(t, nil, env, "", "workflow", "caches", "app", "--delete", "go-abc", "--branch", "main")
	if res.code != 0 || !strings.Contains(res.stdout, "Deleted cache go-abc on branch main") {
		t.Errorf("cache delete: %+v", res)
	}
	want := []string{
		`POST /repos/app/workflows/r1/rerun {"failedOnly":true}`,
		`DELETE /repos/app/caches/go-abc?branch=main `,
	}
	got := strings.Join(calls(), "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("request %q not among:\n%s", w, got)
		}
	}
}
