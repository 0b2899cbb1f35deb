package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/repos"
)

// TestImportLocalKeepsEverything: an admin imports a local bare repository
// with several branches and tags; every ref arrives, HEAD names main, the
// hooks are installed and the source is forgotten. A non-admin token is
// refused for local paths and file:// alike, and creates nothing.
func TestImportLocalKeepsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := sourceRepo(t, map[string]string{"README": "hi\n"}, "dev", "feature/x", "release-1")
	writer := bearer(e.token(allRepoPerms, ""))
	for _, source := range []string{src, "file://" + src} {
		code, body, _ := e.req("POST", "/repos/import", writer, `{"source":`+jsonString(source)+`,"name":"mine"}`)
		if code != 403 || errorOf(body) != "Only admin tokens can import from local paths or file:// URLs" {
			t.Errorf("non-admin import of %s: %d %s", source, code, body)
		}
	}
	assertOnlyEntries(t, e.reposDir)

	body := e.must("POST", "/repos/import", bearer(admin), `{"source":`+jsonString(src)+`}`, 201)
	var created struct{ Name, Path, OwnerTokenID string }
	json.Unmarshal([]byte(body), &created)
	if created.Name != "source" || created.Path != e.dir("source") || created.OwnerTokenID != e.tokenID(admin) {
		t.Errorf("import answer: %s", body)
	}
	if got, want := refs(t, e.dir("source")), refs(t, src); got != want || strings.Count(got, "\n") != 5 {
		t.Errorf("refs after import:\n%s\nwant:\n%s", got, want)
	}
	if cfg, _ := os.ReadFile(filepath.Join(e.dir("source"), "config")); strings.Contains(string(cfg), "remote") || strings.Contains(string(cfg), src) {
		t.Errorf("the mirror still names its source:\n%s", cfg)
	}
	if st, err := os.Stat(filepath.Join(e.dir("source"), "hooks", "pre-receive")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("imported repository has no hooks: %v", err)
	}
	e.table(t, []refCase{
		{name: "detail", method: "GET", path: "/repos/source", auth: bearer(admin), code: 200,
			has: []string{`"branches":["dev","feature/x","main","release-1"]`, `"defaultBranch":"main"`}},
		{name: "file:// by admin, explicit name", method: "POST", path: "/repos/import", auth: bearer(admin), body: `{"source":"file://` + src + `","name":"copy"}`, code: 201},
		{name: "into an existing name", method: "POST", path: "/repos/import", auth: bearer(admin), body: `{"source":` + jsonString(src) + `,"name":"copy"}`, code: 409, msg: "Repository already exists"},
	})
	if got, want := refs(t, e.dir("copy")), refs(t, src); got != want {
		t.Errorf("file:// import refs differ")
	}
	assertOnlyEntries(t, e.reposDir, "copy.git", "source.git")
}

// TestImportRefusals: bad sources are 400 with a message naming the
// problem, for admins too; remote helpers never run; nothing is created.
func TestImportRefusals(t *testing.T) {
	t.Parallel()
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "internal.example":
			return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
		case "metadata.example":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		}
		return nil, &netDNSError{host}
	}
	e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) {
		rc.HostPolicy, _ = netpolicy.Parse("external")
		rc.HostPolicy.Lookup = lookup
	})
	marker := filepath.Join(t.TempDir(), "pwned")
	A := bearer(admin)
	e.newRepo("existing", admin)
	e.table(t, []refCase{
		{name: "no source", method: "POST", path: "/repos/import", auth: A, body: `{}`, code: 400, msg: "Source is required"},
		{name: "blank source", method: "POST", path: "/repos/import", auth: A, body: `{"source":"  "}`, code: 400, msg: "Source is required"},
		{name: "no name to derive", method: "POST", path: "/repos/import", auth: A, body: `{"source":"https://example.com/"}`, code: 400, msg: "Could not derive repository name from source"},
		{name: "derived name invalid", method: "POST", path: "/repos/import", auth: A, body: `{"source":"https://example.com/a/my.repo.git"}`, code: 400, msg: "Name must be alphanumeric with hyphens and underscores only"},
		{name: "ext helper", method: "POST", path: "/repos/import", auth: A, body: `{"source":"ext::sh -c touch% ` + marker + `","name":"x"}`, code: 400, msg: "Invalid source: git remote helpers (ext::) are not allowed"},
		{name: "fd helper", method: "POST", path: "/repos/import", auth: A, body: `{"source":"fd::3","name":"x"}`, code: 400, msg: "Invalid source: git remote helpers (fd::) are not allowed"},
		{name: "option", method: "POST", path: "/repos/import", auth: A, body: `{"source":"--upload-pack=touch ` + marker + `","name":"x"}`, code: 400, msg: "Invalid source: the source may not start with '-'"},
		{name: "ssh option as host", method: "POST", path: "/repos/import", auth: A, body: `{"source":"ssh://-oProxyCommand=touch/x.git"}`, code: 400},
		{name: "unknown protocol", method: "POST", path: "/repos/import", auth: A, body: `{"source":"ftp://example.com/x.git"}`, code: 400, msg: `Invalid source: unsupported protocol "ftp" (use https, http, git, ssh or file)`},
		{name: "relative path", method: "POST", path: "/repos/import", auth: A, body: `{"source":"../other.git"}`, code: 400, msg: "Invalid source: local sources must be absolute paths"},
		{name: "control character", method: "POST", path: "/repos/import", auth: A, body: `{"source":"https://example.com/x\n.git"}`, code: 400, msg: "Invalid source: the source contains control characters"},
		{name: "loopback", method: "POST", path: "/repos/import", auth: A, body: `{"source":"http://127.0.0.1:1/x.git"}`, code: 400, msg: "Source host '127.0.0.1' is not allowed: it resolves to a loopback address (see KOD_WEBHOOK_ALLOWED_HOSTS)"},
		{name: "mapped loopback", method: "POST", path: "/repos/import", auth: A, body: `{"source":"http://[::ffff:127.0.0.1]:1/x.git"}`, code: 400},
		{name: "scp-like loopback", method: "POST", path: "/repos/import", auth: A, body: `{"source":"git@127.0.0.1:org/x.git"}`, code: 400, msg: "Source host '127.0.0.1' is not allowed: it resolves to a loopback address (see KOD_WEBHOOK_ALLOWED_HOSTS)"},
		{name: "git protocol, private name", method: "POST", path: "/repos/import", auth: A, body: `{"source":"git://internal.example/x.git"}`, code: 400, msg: "Source host 'internal.example' is not allowed: it resolves to a private address (see KOD_WEBHOOK_ALLOWED_HOSTS)"},
		{name: "metadata", method: "POST", path: "/repos/import", auth: A, body: `{"source":"https://metadata.example/x.git"}`, code: 400, msg: "Source host 'metadata.example' is not allowed: it resolves to a link-local address (see KOD_WEBHOOK_ALLOWED_HOSTS)"},
		{name: "unresolvable", method: "POST", path: "/repos/import", auth: A, body: `{"source":"https://nowhere.example/x.git"}`, code: 400, msg: "Could not resolve source host 'nowhere.example'"},
		{name: "existing name first", method: "POST", path: "/repos/import", auth: A, body: `{"source":"https://internal.example/existing.git"}`, code: 409, msg: "Repository already exists"},
		{name: "missing local path", method: "POST", path: "/repos/import", auth: A, body: `{"source":"/nonexistent/dir/x.git"}`, code: 500, has: []string{`"error":"Failed to import repository: `, "does not exist"}, hasNot: []string{e.reposDir, ".import-"}},
	})
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a refused source ran a command")
	}
	assertOnlyEntries(t, e.reposDir, "existing.git")
}

type netDNSError struct{ host string }

func (e *netDNSError) Error() string { return "lookup " + e.host + ": no such host" }

// TestImportOverHTTP imports from a kod server over smart HTTP with the
// token in the URL, through a host name pinned to its checked addresses;
// the password never shows, a redirect is an error, and the time limit
// holds.
func TestImportOverHTTP(t *testing.T) {
	t.Parallel()
	source := newEnv(t)
	source.newRepo("upstream", admin)
	fill(t, source.dir("upstream"), sourceRepo(t, nil, "dev"))
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hanging.Close)
	redirect := httptest.NewServer(http.RedirectHandler(source.srv.URL+"/repos/upstream.git/info/refs?service=git-upload-pack", http.StatusFound))
	t.Cleanup(redirect.Close)

	// Real clones get the default limit (a loaded machine may take more
	// than seconds); the hanging source is imported on a server whose limit
	// is 2 s.
	e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) { rc.HostPolicy, _ = netpolicy.Parse("loopback") })
	short := newEnvWith(t, func(d *api.Deps, rc *repos.Config) {
		rc.HostPolicy, _ = netpolicy.Parse("loopback")
		rc.ImportTimeout = 2 * time.Second
	})
	url := strings.Replace(source.srv.URL, "http://127.0.0.1", "http://git:"+admin+"@localhost", 1) + "/repos/upstream.git"
	body := e.must("POST", "/repos/import", bearer(admin), `{"source":`+jsonString(url)+`}`, 201)
	if strings.Contains(body, admin[8:]) {
		t.Errorf("answer shows the source's token: %s", body)
	}
	if got, want := refs(t, e.dir("upstream")), refs(t, source.dir("upstream")); got != want {
		t.Errorf("refs over HTTP:\n%s\nwant\n%s", got, want)
	}
	if cfg, _ := os.ReadFile(filepath.Join(e.dir("upstream"), "config")); strings.Contains(string(cfg), admin) {
		t.Errorf("the token stayed in the config:\n%s", cfg)
	}

	bad := strings.Replace(url, admin, "kod_wrongwrongwrongwrongwrongwrong1234", 1)
	code, body, _ := e.req("POST", "/repos/import", bearer(admin), `{"source":`+jsonString(bad)+`,"name":"denied"}`)
	if code != 500 || !strings.HasPrefix(errorOf(body), "Failed to import repository: ") || strings.Contains(body, "wrongwrong") {
		t.Errorf("failed clone: %d %s", code, body)
	}
	code, body, _ = e.req("POST", "/repos/import", bearer(admin), `{"source":"`+redirect.URL+`/x.git"}`)
	if code != 500 || !strings.Contains(errorOf(body), "returned error: 302") {
		t.Errorf("redirect: %d %s", code, body)
	}
	start := time.Now()
	code, body, _ = short.req("POST", "/repos/import", bearer(admin), `{"source":"`+hanging.URL+`/slow.git"}`)
	if code != 500 || errorOf(body) != "Failed to import repository: the clone did not finish within 2s" || time.Since(start) > 2*time.Minute {
		t.Errorf("hanging source: %d %s after %s", code, body, time.Since(start))
	}
	assertOnlyEntries(t, e.reposDir, "upstream.git")
	assertOnlyEntries(t, short.reposDir)
	if _, err := e.store.GetRepo(context.Background(), "denied"); err == nil {
		t.Errorf("a failed import left a record")
	}
}
