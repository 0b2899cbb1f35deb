package api_test

import (
	"context"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/repos"
)

// refusingStore is a store whose repository writes fail as the bbolt file
// fails when the disk is full or the file is unwritable.
type refusingStore struct {
	forge.Store
	errno syscall.Errno
}

func (s refusingStore) CreateRepo(context.Context, *forge.Repo) error {
	return &fs.PathError{Op: "write", Path: "/srv/kod/data/kod.db", Err: s.errno}
}

// TestStorageRefusalsTellTheUser: a write the server's own storage
// refuses is 507 (disk full) or 503 (unwritable) with a message saying it
// is passing and nothing changed, logged with a request id, no path shown.
func TestStorageRefusalsTellTheUser(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		errno syscall.Errno
		code  int
		msg   string
	}{
		{syscall.ENOSPC, 507, "The server's disk is full: nothing was changed; try again once space is freed"},
		{syscall.EPERM, 503, "The server cannot write its data right now: nothing was changed; try again later"},
		{syscall.EROFS, 503, "The server cannot write its data right now: nothing was changed; try again later"},
	} {
		e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) {
			d.Store = refusingStore{d.Store, c.errno}
			rc.Store = d.Store
		})
		code, body, h := e.req("POST", "/repos", bearer(admin), `{"name":"a"}`)
		if code != c.code || errorOf(body) != c.msg || strings.Contains(body, "/srv") || h.Get("X-Request-Id") == "" {
			t.Errorf("%v: %d %s (request id %q)", c.errno, code, body, h.Get("X-Request-Id"))
		}
	}
}
