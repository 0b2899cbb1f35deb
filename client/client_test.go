package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

func TestParseServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:3000":    "http://localhost:3000",
		"https://kod.example.com/": "https://kod.example.com",
		" http://h:1/prefix/ ":     "http://h:1/prefix",
		"localhost:3000":           "",
		"ftp://h":                  "",
		"http://user:pw@h":         "",
		"http://h/?x=1":            "",
		"http:///nohost":           "",
	} {
		u, err := ParseServerURL(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("%q: accepted as %s", in, u)
		case want != "" && (err != nil || u.String() != want):
			t.Errorf("%q: %v %v, want %s", in, u, err, want)
		}
	}
}

// TestErrorsAndPaths: the server's message and status reach the caller as
// *Error matching the forge sentinels; path segments are escaped; a path
// prefix of the server URL is kept; the token goes as Bearer.
func TestErrorsAndPaths(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization"))
		switch {
		case strings.HasSuffix(r.URL.Path, "/repos/taken"):
			w.WriteHeader(409)
			io.WriteString(w, `{"error":"Repository already exists"}`)
		case strings.Contains(r.URL.Path, "/protections/"):
			io.WriteString(w, `{"branches":["release/1","main"]}`)
		case strings.HasSuffix(r.URL.Path, "/collaborators"):
			io.WriteString(w, `[{"username":"alice","addedAt":5},"bob"]`)
		case strings.HasSuffix(r.URL.Path, "/boom"):
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"Not found"}`)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/kod/", "kod_tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.GetRepo(ctx, "taken")
	var e *Error
	if !errors.As(err, &e) || e.Status != 409 || e.Message != "Repository already exists" || !errors.Is(err, forge.ErrConflict) || errors.Is(err, forge.ErrNotFound) {
		t.Errorf("409: %#v", err)
	}
	bs, err := c.Protect(ctx, "app", "release/1")
	if err != nil || strings.Join(bs, ",") != "main,release/1" {
		t.Errorf("protect: %v %v", bs, err)
	}
	cs, err := c.ListCollaborators(ctx, "app")
	if err != nil || len(cs) != 2 || cs[0].AddedAt != 5 || cs[1].Username != "bob" {
		t.Errorf("collaborators: %+v %v", cs, err)
	}
	err = c.DeleteRepo(ctx, "boom")
	if StatusOf(err) != 502 || !strings.Contains(err.Error(), "Bad Gateway") {
		t.Errorf("502 with HTML: %v", err)
	}
	if err := c.DeleteKey(ctx, "x"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("404: %v", err)
	}
	want := []string{
		"GET /kod/repos/taken Bearer kod_tok",
		"PUT /kod/repos/app/protections/branches/release%2F1 Bearer kod_tok",
		"GET /kod/repos/app/collaborators Bearer kod_tok",
		"DELETE /kod/repos/boom Bearer kod_tok",
		"DELETE /kod/keys/x Bearer kod_tok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnreachable(t *testing.T) {
	c, err := New("http://127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Health(context.Background())
	var u *UnreachableError
	if !errors.As(err, &u) || u.URL != "http://127.0.0.1:1" {
		t.Errorf("got %v", err)
	}
}

// TestTimeout: a request that gets no answer within Timeout is an
// *UnreachableError saying so; streams are not bounded by it.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/logs") {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		<-release
		io.WriteString(w, "late\n")
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(srv.URL, "t")
	c.Timeout = 50 * time.Millisecond
	var u *UnreachableError
	if err := c.Health(context.Background()); !errors.As(err, &u) || !strings.Contains(err.Error(), "no answer to GET /health within 50ms") {
		t.Errorf("health: %v", err)
	}
	rc, err := c.Logs(context.Background(), "app", "r1", LogOptions{Follow: true})
	if err != nil {
		t.Fatalf("a stream must not time out: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	rc.Close()
}
