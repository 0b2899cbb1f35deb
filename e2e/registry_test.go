package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// TestStepImageCannotReachInternalHosts: a step image on the server's
// loopback (a service that is not a registry) is refused before any pull,
// so the engine never sends it a request, and the step fails saying why.
func TestStepImageCannotReachInternalHosts(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "INTERNAL-SECRET-DATA: hunter2", http.StatusNotFound)
	}))
	t.Cleanup(internal.Close)
	s := startServer(t, "", nil)
	s.createRepo("ssrf")
	image := strings.TrimPrefix(internal.URL, "http://") + "/some/image:tag"
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "probe"
image = "` + image + `"
run = "true"
`})
	p.git("push", "-q", s.gitURL("ssrf", adminToken), "main")
	run := s.waitRun("ssrf", s.onlyRun("ssrf").ID, time.Minute)
	if run.Status != forge.RunFailed || run.Result == nil || len(run.Result.Steps) != 1 {
		t.Fatalf("run: %s %q %+v", run.Status, run.Error, run.Result)
	}
	e := run.Result.Steps[0].Error
	if !strings.Contains(e, `image "`+image+`" is not present and could not be pulled: registry 127.0.0.1: 127.0.0.1 is a loopback address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow`) {
		t.Errorf("step error: %q", e)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the internal service got %d requests", n)
	}
	assertNoLeftovers(t, s)
}
