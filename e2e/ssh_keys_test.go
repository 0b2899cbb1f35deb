package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
)

// TestSSHKeyGrantsNoMoreThanItsToken reproduces the security finding with
// the real OpenSSH client: alice owns alicerepo (protected main) through
// her full token, and a token of hers holding nothing added an SSH key and
// force-pushed main with it. Now such a token cannot add a key; a key added
// by a read-only token of hers reads what that token reads and pushes
// nothing; a key follows the token that added it and stops with it; and a
// key stored before kod recorded who adds keys (an old database) grants
// nothing, with a message saying what to do.
func TestSSHKeyGrantsNoMoreThanItsToken(t *testing.T) {
	t.Parallel()
	s := startSSHServer(t, "", nil)
	s.createRepo("shared")
	s.mustDo("POST", "/repos/shared/collaborators", adminToken, map[string]string{"username": "alice"}, http.StatusCreated, nil)
	full := s.token("alice-full", "alice", "repo:read", "repo:write")
	s.mustDo("POST", "/repos", full, map[string]string{"name": "alicerepo"}, http.StatusCreated, nil)
	p := newProject(t, "main", map[string]string{"README.md": "one\n"})
	p.commit("two", map[string]string{"README.md": "two\n"})
	p.git("push", "-q", s.gitURL("alicerepo", full), "main")
	p.git("push", "-q", s.gitURL("shared", adminToken), "main")
	s.mustDo("PUT", "/repos/alicerepo/protections/branches/main", full, nil, http.StatusOK, nil)
	mainAt := s.headOf("alicerepo", "main")
	forcePush := func(key keyPair) (string, error) {
		return p.gitSSH(s, key, nil, "push", "-f", s.sshURL("kod", "alicerepo"), "HEAD~1:refs/heads/main")
	}

	// The finding: a token holding nothing may not read alicerepo, and now
	// may not add a key either, so its key cannot push.
	var roTok struct{ Token string }
	s.mustDo("POST", "/tokens", adminToken, map[string]any{"name": "alice-ro", "username": "alice", "permissions": []string{}}, http.StatusCreated, &roTok)
	ro := roTok.Token
	if code, body := s.do("GET", "/repos/alicerepo", ro, nil); code != http.StatusForbidden || !strings.Contains(string(body), forge.MsgPermissionDenied) {
		t.Fatalf("GET /repos/alicerepo with a token holding nothing: %d %s", code, body)
	}
	roKey := newSSHKey(t, "alice-ro")
	if code, body := s.do("POST", "/keys", ro, map[string]string{"publicKey": roKey.Pub}); code != http.StatusForbidden || !strings.Contains(string(body), "requires a token with repo:read") {
		t.Fatalf("POST /keys with a token holding nothing: %d %s", code, body)
	}
	if out, err := forcePush(roKey); err == nil || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("force-push with the refused key: %v\n%s", err, out)
	}

	// A read-only token's key: it reads shared (alice is a collaborator),
	// not alicerepo (the read token is not its owner, as over HTTP), and
	// pushes nothing, although alice's full token could.
	read := s.token("alice-read", "alice", "repo:read")
	s.mustDo("GET", "/repos/alicerepo", read, nil, http.StatusForbidden, nil)
	readKey := s.addKey(read, "alice-read")
	if out, code := s.ssh(readKey, "kod", nil, "repos"); code != 0 || out != "shared\n" {
		t.Errorf("repos with the read token's key: %d %q", code, out)
	}
	if out, err := forcePush(readKey); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("force-push with the read token's key: %v\n%s", err, out)
	}
	if out, err := p.gitSSH(s, readKey, nil, "push", s.sshURL("kod", "shared"), "HEAD:refs/heads/other"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("push to shared with the read token's key: %v\n%s", err, out)
	}
	if at := s.headOf("alicerepo", "main"); at != mainAt {
		t.Fatalf("main moved to %s", at)
	}

	// The owner's token's key force-pushes the protected main (as the token
	// may over HTTP), and stops working when that token is deleted.
	fullKey := s.addKey(full, "alice-full")
	if out, err := forcePush(fullKey); err != nil || s.headOf("alicerepo", "main") == mainAt {
		t.Fatalf("owner's force-push: %v\n%s", err, out)
	}
	var toks []struct{ ID, Name string }
	s.mustDo("GET", "/tokens", adminToken, nil, http.StatusOK, &toks)
	for _, tok := range toks {
		if tok.Name == "alice-full" {
			s.mustDo("DELETE", "/tokens/"+tok.ID, adminToken, nil, http.StatusNoContent, nil)
		}
	}
	if out, code := s.ssh(fullKey, "kod", nil, "repos"); code != 1 || !strings.Contains(out, "has been deleted or has expired") {
		t.Errorf("key of a deleted token: %d %q", code, out)
	}

	// A key stored by an older kod (no record of who added it).
	oldKey := newSSHKey(t, "old")
	s.Stop()
	store, err := boltstore.Open(filepath.Join(s.Home, "data", "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := forge.NewSSHKey("alice", oldKey.Pub, "", nil)
	if err == nil {
		err = store.CreateKey(context.Background(), k)
	}
	if cerr := store.Close(); err != nil || cerr != nil {
		t.Fatalf("storing an old key: %v %v", err, cerr)
	}
	s.Restart()
	if !strings.Contains(s.Logs(), `msg="SSH keys stored before kod recorded which token adds a key grant nothing until they are removed and added again" keys=1 users=[alice]`) {
		t.Errorf("no warning at start about the old key:\n%s", s.Logs())
	}
	if out, code := s.ssh(oldKey, "kod", nil, "repos"); code != 1 || !strings.Contains(out, "was added before kod recorded which token adds a key") {
		t.Errorf("old key: %d %q", code, out)
	}
}

// addKey adds a fresh key with token over REST and returns it.
func (s *server) addKey(token, comment string) keyPair {
	s.t.Helper()
	key := newSSHKey(s.t, comment)
	s.mustDo("POST", "/keys", token, map[string]string{"publicKey": key.Pub}, http.StatusCreated, nil)
	return key
}
