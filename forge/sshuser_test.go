package forge

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestKeyPrincipal is the rule of what an SSH key grants, on the shape of
// the finding: alice owns alicerepo through her full token, and other
// tokens of hers hold less (or nothing). A key never does more than the
// token that added it could do over HTTP, unless an admin added it for
// alice, in which case it is what alice's live tokens are together.
func TestKeyPrincipal(t *testing.T) {
	t.Parallel()
	tok := func(id, user string, expires Millis, perms ...Permission) *Token {
		return &Token{ID: id, Username: user, ExpiresAt: expires, Permissions: perms}
	}
	full := tok("full", "alice", 0, PermRepoRead, PermRepoWrite)
	none := tok("none", "alice", 0)
	read := tok("read", "alice", 0, PermRepoRead)
	flow := tok("flow", "alice", 0, PermWorkflowTrigger, PermSecretsWrite)
	old := tok("old", "alice", 500, PermRepoRead, PermRepoWrite)
	bobs := tok("bobs", "bob", 0, PermRepoRead, PermRepoWrite)
	zed := tok("zed", "zed", 0, PermAdmin)
	all := []*Token{full, none, read, flow, old, bobs, zed}
	alicerepo := &Repo{Name: "alicerepo", OwnerTokenID: "full", OwnerUsername: "alice", ProtectedBranches: []string{"main"}}
	shared := &Repo{Name: "shared", OwnerTokenID: "x", Collaborators: []Collaborator{{Username: "alice"}}}
	key := func(user, by string, admin bool) *SSHKey {
		return &SSHKey{ID: "k1", Username: user, Fingerprint: "SHA256:k1", AddedByTokenID: by, AddedByAdmin: admin}
	}
	rd, wr := Action{Perm: PermRepoRead}, Action{Perm: PermRepoWrite}
	forcePush := []RefUpdate{{Old: strings.Repeat("a", 40), New: strings.Repeat("b", 40), Ref: "refs/heads/main"}}

	cases := []struct {
		name   string
		key    *SSHKey
		tokens []*Token
		err    string // refusal, else:
		token  string // the principal's TokenID
		// on alicerepo: read, write, force-push protected main; on shared: read
		read, write, protected, sharedRead bool
	}{
		{"the finding: added by a token holding nothing", key("alice", "none", false), all, "holds neither repo:read nor repo:write", "", false, false, false, false},
		{"added by a workflow-only token", key("alice", "flow", false), all, "holds neither", "", false, false, false, false},
		{"added by a read token: reads what it reads, owns nothing", key("alice", "read", false), all, "", "read", false, false, false, true},
		{"added by the owner's token", key("alice", "full", false), all, "", "full", true, true, true, true},
		{"adding token deleted", key("alice", "full", false), []*Token{none, read, zed}, "has been deleted or has expired", "", false, false, false, false},
		{"adding token expired", key("alice", "old", false), all, "has been deleted or has expired", "", false, false, false, false},
		{"adding token of another user", key("alice", "bobs", false), all, "has been deleted or has expired", "", false, false, false, false},
		{"added by an admin: collaborator access", key("alice", "adm", true), all, "", "", true, true, true, true},
		{"added by an admin, alice's tokens read-only: still collaborator access", key("alice", "adm", true), []*Token{none, read}, "", "", true, true, true, true},
		{"added by an admin, alice's tokens hold nothing", key("alice", "adm", true), []*Token{none, flow, old}, "", "", true, true, true, true},
		{"added by an admin, alice has no token at all (Kod)", key("alice", "adm", true), nil, "", "", true, true, true, true},
		{"admin-linked user's own key", key("zed", "zed", true), all, "", "", true, true, true, true},
		{"stored before kod recorded who adds keys", key("alice", "", false), all, "was added before kod recorded", "", false, false, false, false},
		{"no username", key("", "full", false), all, "not registered", "", false, false, false, false},
	}
	for _, c := range cases {
		p, err := KeyPrincipal(c.key, c.tokens, 1000)
		if c.err != "" {
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), c.err) || p != nil {
				t.Errorf("%s: %+v %v, want refusal %q", c.name, p, err, c.err)
			}
			continue
		}
		if err != nil || len(p.Permissions) == 0 || p.TokenID != c.token || p.Username != c.key.Username {
			t.Errorf("%s: %+v %v", c.name, p, err)
			continue
		}
		write := Authorize(p, wr, alicerepo) == nil
		got := []bool{Authorize(p, rd, alicerepo) == nil, write, write && CheckRefUpdates(p, alicerepo, forcePush) == nil, Authorize(p, rd, shared) == nil}
		want := []bool{c.read, c.write, c.protected, c.sharedRead}
		if !slices.Equal(got, want) {
			t.Errorf("%s: alicerepo read/write/protected, shared read = %v, want %v", c.name, got, want)
		}
	}
}

// TestAdminAddedKeyGrantsCollaboratorAccess: Kod's model, an admin adds a
// key for a collaborator without any token: the key reads and pushes the
// repositories the user collaborates on, never a protected branch of
// another's repository nor a repository the user is not a collaborator of,
// and the access ends with the collaboration.
func TestAdminAddedKeyGrantsCollaboratorAccess(t *testing.T) {
	t.Parallel()
	key := &SSHKey{ID: "k1", Username: "carol", Fingerprint: "SHA256:k1", AddedByTokenID: "adm", AddedByAdmin: true}
	shared := &Repo{Name: "shared", OwnerTokenID: "x", OwnerUsername: "dave", Collaborators: []Collaborator{{Username: "carol"}}, ProtectedBranches: []string{"main"}}
	other := &Repo{Name: "other", OwnerTokenID: "x"}
	p, err := KeyPrincipal(key, nil, 1000)
	if err != nil {
		t.Fatalf("tokenless collaborator's admin-added key: %v", err)
	}
	upd := func(branch string) []RefUpdate {
		return []RefUpdate{{Old: strings.Repeat("a", 40), New: strings.Repeat("b", 40), Ref: "refs/heads/" + branch}}
	}
	if err := Authorize(p, Action{Perm: PermRepoRead}, shared); err != nil {
		t.Errorf("read: %v", err)
	}
	if err := Authorize(p, Action{Perm: PermRepoWrite}, shared); err != nil || CheckRefUpdates(p, shared, upd("feature")) != nil {
		t.Errorf("push a branch: %v", err)
	}
	if err := CheckRefUpdates(p, shared, upd("main")); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "protected") {
		t.Errorf("push the protected main: %v", err)
	}
	if err := Authorize(p, Action{Perm: PermRepoRead}, other); !errors.Is(err, ErrForbidden) {
		t.Errorf("a repository carol is not a collaborator of: %v", err)
	}
	if p.IsAdmin() || p.TokenID != "" {
		t.Errorf("principal %+v: no admin, no token", p)
	}
	shared.Collaborators = nil
	if err := Authorize(p, Action{Perm: PermRepoRead}, shared); !errors.Is(err, ErrForbidden) {
		t.Errorf("after carol was removed as collaborator: %v", err)
	}
}

// TestNewSSHKeyRecordsAdder: the adding token and whether it held admin
// are recorded; a key made without a token records nothing (and so grants
// nothing).
func TestNewSSHKeyRecordsAdder(t *testing.T) {
	t.Parallel()
	pub, _ := keygen(t, "-t", "ed25519")
	for _, c := range []struct {
		by        *Principal
		id        string
		wantAdmin bool
	}{
		{PrincipalFromToken(&Token{ID: "t1", Username: "alice", Permissions: []Permission{PermRepoRead}}), "t1", false},
		{PrincipalFromToken(&Token{ID: "t2", Permissions: []Permission{PermAdmin}}), "t2", true},
		{nil, "", false},
		{UserPrincipal("alice", nil, 0), "", false},
	} {
		k, err := NewSSHKey("alice", pub, "", c.by)
		if err != nil || k.AddedByTokenID != c.id || k.AddedByAdmin != c.wantAdmin {
			t.Errorf("by %+v: %+v %v", c.by, k, err)
		}
	}
}
