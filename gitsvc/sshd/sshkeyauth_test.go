package sshd_test

import (
	"context"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// TestKeyGrantsWhatItsAdderHolds: a session acts as the token that added
// its key (or, for a key an admin added, collaborator access for the user),
// decided again for every command; keys that grant nothing are refused
// with a message saying why.
func TestKeyGrantsWhatItsAdderHolds(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, &gitsvc.Git{}, nil)
	e.repo("r", "alice")
	ctx := context.Background()
	by := func(id string, perms ...forge.Permission) *forge.Principal {
		return &forge.Principal{TokenID: id, Username: "alice", Permissions: perms}
	}
	connect := func(s gossh.Signer) *gossh.Client {
		t.Helper()
		c, err := e.dial("kod", gossh.PublicKeys(s))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// The finding's token: linked to alice, holding nothing, while another
	// token of alice's holds repo:write.
	e.token("alice", forge.PermRepoRead, forge.PermRepoWrite)
	nothing := e.token("alice")
	readID := e.token("alice", forge.PermRepoRead)
	fullID := e.token("alice", forge.PermRepoRead, forge.PermRepoWrite)
	adminID := e.token("", forge.PermAdmin)

	cases := []struct {
		name       string
		by         *forge.Principal
		read, push bool
		refusal    string
	}{
		{"added by a token holding nothing", by(nothing), false, false, "holds neither repo:read nor repo:write"},
		{"added by a read-only token", by(readID, forge.PermRepoRead), true, false, "Permission denied"},
		{"added by a read-write token", by(fullID, forge.PermRepoRead, forge.PermRepoWrite), true, true, ""},
		{"added by an admin for alice", &forge.Principal{TokenID: adminID, Permissions: []forge.Permission{forge.PermAdmin}}, true, true, ""},
		{"stored before kod recorded the adder", nil, false, false, "was added before kod recorded"},
	}
	for _, tc := range cases {
		signer, _ := e.keyAddedBy("alice", tc.by)
		c := connect(signer)
		out, stderr, code := run(t, c, "repos")
		if got := code == 0 && out == "r\n"; got != tc.read {
			t.Errorf("%s: repos: exit %d, %q %q", tc.name, code, out, stderr)
		}
		before := len(e.pushes.pushes)
		_, stderr, code = run(t, c, "git-receive-pack 'r.git'")
		// A push that is let through reaches receive-pack (which then ends,
		// having no client to talk to): only the registration tells.
		if got := len(e.pushes.pushes) > before; got != tc.push || !tc.push && code != 1 {
			t.Errorf("%s: push: exit %d, registered %v, stderr %q", tc.name, code, got, stderr)
		}
		if tc.refusal != "" && !strings.Contains(stderr, tc.refusal) {
			t.Errorf("%s: push refused with %q, want %q", tc.name, stderr, tc.refusal)
		}
	}
	// The push of the key added by the read-write token is that token's
	// (runs record it); the admin-added key's is alice's, without a token.
	if p := e.pushes.pushes; len(p) != 2 || p[0].Principal.TokenID != fullID || p[1].Principal.TokenID != "" || p[1].Principal.Username != "alice" {
		t.Errorf("push principals: %+v", p)
	}

	// Deleting the adding token disarms its key at once, also on an open
	// connection; the admin-added key still follows alice's other tokens.
	signer, _ := e.keyAddedBy("alice", by(fullID, forge.PermRepoRead, forge.PermRepoWrite))
	c := connect(signer)
	if out, _, code := run(t, c, "repos"); code != 0 || out != "r\n" {
		t.Fatalf("before the token is deleted: %d %q", code, out)
	}
	if err := e.store.DeleteToken(ctx, fullID); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := run(t, c, "repos"); code != 1 || out != "" || !strings.Contains(stderr, "has been deleted or has expired") {
		t.Errorf("after the adding token is deleted: exit %d, %q %q", code, out, stderr)
	}
	if logs := e.logs(); !strings.Contains(logs, "ssh session refused: the key grants nothing") || !strings.Contains(logs, "added_by_token="+fullID) {
		t.Errorf("refusal not logged:\n%s", logs)
	}
}
