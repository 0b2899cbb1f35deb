package forge

import (
	"errors"
	"strings"
	"testing"
)

func TestAuthorizeOrder(t *testing.T) {
	repo := &Repo{Name: "r", OwnerTokenID: "owner", OwnerUsername: "olga", Collaborators: []Collaborator{{Username: "alice"}}}
	write := Action{Perm: PermRepoWrite}
	del := Action{Perm: PermRepoDelete, OwnerVerb: "delete this repository"}
	cases := []struct {
		name string
		p    *Principal
		a    Action
		r    *Repo
		want error
		msg  string
	}{
		{"no permission, no repo looked up", &Principal{TokenID: "x", Permissions: []Permission{PermRepoRead}}, write, nil, ErrForbidden, "Permission denied"},
		{"nil principal", nil, write, repo, ErrForbidden, "Permission denied"},
		{"admin", &Principal{TokenID: "a", Permissions: []Permission{PermAdmin}}, del, repo, nil, ""},
		{"owner deletes", &Principal{TokenID: "owner", Permissions: []Permission{PermRepoDelete}}, del, repo, nil, ""},
		{"system token writes", &Principal{TokenID: "s", Permissions: []Permission{PermRepoWrite}}, write, repo, nil, ""},
		{"system token may not delete", &Principal{TokenID: "s", Permissions: []Permission{PermRepoDelete}}, del, repo, ErrForbidden, "Only the repository owner can delete this repository"},
		{"collaborator writes", &Principal{TokenID: "c", Username: "alice", Permissions: []Permission{PermRepoWrite}}, write, repo, nil, ""},
		{"stranger is refused", &Principal{TokenID: "c", Username: "bob", Permissions: []Permission{PermRepoWrite}}, write, repo, ErrForbidden, "Access denied"},
		{"collaborator may not delete", &Principal{TokenID: "c", Username: "alice", Permissions: []Permission{PermRepoDelete}}, del, repo, ErrForbidden, "Only the repository owner can delete this repository"},
		{"another token of the owner's user is not the owner", &Principal{TokenID: "t2", Username: "olga", Permissions: []Permission{PermRepoDelete}}, del, repo, ErrForbidden, "Access denied"},
		{"SSH user owns by username", &Principal{Username: "olga", Permissions: []Permission{PermRepoDelete}}, del, repo, nil, ""},
		{"SSH user without a username", &Principal{Permissions: []Permission{PermRepoRead}}, Action{Perm: PermRepoRead}, repo, ErrForbidden, "Access denied"},
		{"anonymous reads", &Principal{Anonymous: true, Permissions: []Permission{PermRepoRead}}, Action{Perm: PermRepoRead}, repo, nil, ""},
		{"anonymous cannot write", &Principal{Anonymous: true, Permissions: []Permission{PermRepoRead}}, write, repo, ErrForbidden, "Permission denied"},
		{"custom denial", &Principal{TokenID: "x", Permissions: []Permission{PermRepoWrite}}, Action{Perm: PermAdmin, Denied: "Admin permission required"}, nil, ErrForbidden, "Admin permission required"},
		{"route without a rule refuses non-admins", &Principal{TokenID: "x", Permissions: AllPermissions[:11]}, Action{}, nil, ErrForbidden, "Permission denied"},
		{"any-token route", &Principal{TokenID: "x"}, Action{AnyToken: true}, nil, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Authorize(c.p, c.a, c.r)
			if c.want == nil {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || err.Error() != c.msg {
				t.Errorf("got %v, want %v %q", err, c.want, c.msg)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"a", "my-project", "A_b-9", strings.Repeat("x", 100)} {
		if err := ValidateRepoName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a.b", "a/b", "..", "a b", strings.Repeat("x", 101), "ä"} {
		if ValidateRepoName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, ok := range []string{"main", "release/1.0", "feature/x-y", "a.b"} {
		if !ValidBranchName(ok) {
			t.Errorf("branch %q refused", ok)
		}
	}
	for _, bad := range []string{"", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "/a", "a/", "a.lock", ".a", "a/.b", "@", "a@{1}", "a//b", "a.", strings.Repeat("x", 256)} {
		if ValidBranchName(bad) {
			t.Errorf("branch %q accepted", bad)
		}
	}
}

func TestTokens(t *testing.T) {
	a, b := NewTokenSecret(), NewTokenSecret()
	if a == b || !LooksLikeToken(a) || len(HashToken(a)) != 64 {
		t.Errorf("tokens %q %q", a, b)
	}
	if id := NewID(); len(id) != 12 || strings.Trim(id, lowerAlnum) != "" {
		t.Errorf("id %q", id)
	}
	u := RefUpdate{Old: zeroOID, New: strings.Repeat("a", 40), Ref: "refs/heads/main"}
	if !u.IsCreate() || u.IsDelete() {
		t.Errorf("create: %+v", u)
	}
	p := &Principal{TokenID: "c", Permissions: []Permission{PermRepoWrite}}
	r := &Repo{OwnerTokenID: "o", ProtectedBranches: []string{"main"}}
	if err := CheckRefUpdates(p, r, []RefUpdate{{Ref: "refs/heads/dev"}, u}); err == nil || !strings.Contains(err.Error(), "branch 'main' is protected") {
		t.Errorf("protected: %v", err)
	}
	if err := CheckRefUpdates(&Principal{TokenID: "o", Permissions: []Permission{PermRepoWrite}}, r, []RefUpdate{u}); err != nil {
		t.Errorf("owner refused: %v", err)
	}
}

func TestRepoMutations(t *testing.T) {
	r := &Repo{Name: "r", ProtectedBranches: []string{}}
	if err := r.AddCollaborator("alice", 1); err != nil {
		t.Fatal(err)
	}
	if err := r.AddCollaborator("alice", 2); !errors.Is(err, ErrConflict) || err.Error() != "Collaborator already added to this repository" {
		t.Errorf("duplicate: %v", err)
	}
	if err := r.RemoveCollaborator("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove unknown: %v", err)
	}
	if err := r.RemoveCollaborator("alice"); err != nil || r.HasCollaborator("alice") {
		t.Errorf("remove: %v %+v", err, r.Collaborators)
	}
	r.Protect("main")
	r.Protect("dev")
	r.Protect("main")
	if strings.Join(r.ProtectedBranches, ",") != "dev,main" {
		t.Errorf("protect: %v", r.ProtectedBranches)
	}
	r.Unprotect("dev")
	r.Unprotect("nope")
	if strings.Join(r.ProtectedBranches, ",") != "main" {
		t.Errorf("unprotect: %v", r.ProtectedBranches)
	}
	for _, ok := range []string{"alice", "a", "bob.smith", "x_y-z9", strings.Repeat("u", 64)} {
		if err := ValidateUsername(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a b", "a/b", "a:b", strings.Repeat("u", 65), "anonymous", "Anon", "ä"} {
		if ValidateUsername(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckRefUpdates(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	r := &Repo{OwnerTokenID: "o", OwnerUsername: "olga", ProtectedBranches: []string{"main", "release/1"}, Collaborators: []Collaborator{{Username: "alice"}}}
	collab := &Principal{TokenID: "c", Username: "alice", Permissions: []Permission{PermRepoWrite}}
	owner := &Principal{TokenID: "o", Permissions: []Permission{PermRepoWrite}}
	admin := &Principal{TokenID: "x", Permissions: []Permission{PermAdmin}}
	system := &Principal{TokenID: "s", Permissions: []Permission{PermRepoWrite}}
	main := func(old, new string) RefUpdate { return RefUpdate{Old: old, New: new, Ref: "refs/heads/main"} }
	cases := []struct {
		name    string
		p       *Principal
		updates []RefUpdate
		refused string
	}{
		{"create", collab, []RefUpdate{main(zeroOID, a)}, "main"},
		{"update", collab, []RefUpdate{main(a, b)}, "main"},
		{"delete", collab, []RefUpdate{main(a, zeroOID)}, "main"},
		{"nested protected", system, []RefUpdate{{Old: a, New: b, Ref: "refs/heads/release/1"}}, "release/1"},
		{"mixed push refused whole", collab, []RefUpdate{{Old: a, New: b, Ref: "refs/heads/feature"}, main(a, b)}, "main"},
		{"unprotected branch", collab, []RefUpdate{{Old: a, New: b, Ref: "refs/heads/feature"}}, ""},
		{"tag named like an unprotected branch", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/feature"}}, ""},
		{"tag shadowing main", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/main"}}, "shadow main"},
		{"tag shadowing main, updated", system, []RefUpdate{{Old: a, New: b, Ref: "refs/tags/main"}}, "shadow main"},
		{"tag shadowing a nested branch", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/release/1"}}, "shadow release/1"},
		{"remote-tracking ref", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/remotes/main"}}, "shadow main"},
		{"remote HEAD spelling", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/remotes/main/HEAD"}}, "shadow main"},
		{"top-level ref", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/main"}}, "shadow main"},
		{"any namespace", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/x/y/main"}}, "shadow main"},
		{"shadowing ref in a mixed push", collab, []RefUpdate{{Old: a, New: b, Ref: "refs/heads/feature"}, {Old: zeroOID, New: a, Ref: "refs/tags/main"}}, "shadow main"},
		{"deleting a shadowing tag", collab, []RefUpdate{{Old: a, New: zeroOID, Ref: "refs/tags/main"}}, ""},
		{"tag with a longer name", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/main2"}}, ""},
		{"tag ending like a nested branch part", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/1"}}, ""},
		{"branch in a folder named like main", collab, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/heads/alice/main"}}, ""},
		{"owner may create the tag", owner, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/main"}}, ""},
		{"admin may create the tag", admin, []RefUpdate{{Old: zeroOID, New: a, Ref: "refs/tags/main"}}, ""},
		{"prefix is not the branch", collab, []RefUpdate{{Old: a, New: b, Ref: "refs/heads/main2"}}, ""},
		{"owner", owner, []RefUpdate{main(a, zeroOID)}, ""},
		{"owner without repo:write", &Principal{TokenID: "o", Permissions: []Permission{PermRepoRead}}, []RefUpdate{main(a, b)}, "main"},
		{"owner by username", &Principal{Username: "olga", Permissions: []Permission{PermRepoWrite}}, []RefUpdate{main(a, b)}, ""},
		{"owner by username without repo:write", &Principal{Username: "olga", Permissions: []Permission{PermRepoRead}}, []RefUpdate{main(a, b)}, "main"},
		{"admin", admin, []RefUpdate{main(a, b)}, ""},
		{"no principal", nil, []RefUpdate{main(a, b)}, "main"},
	}
	for _, c := range cases {
		err := CheckRefUpdates(c.p, r, c.updates)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case strings.HasPrefix(c.refused, "shadow "):
			b := strings.TrimPrefix(c.refused, "shadow ")
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "would shadow the protected branch '"+b+"'") {
				t.Errorf("%s: got %v, want a refusal for shadowing %q", c.name, err, b)
			}
		case c.refused != "" && (!errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "branch '"+c.refused+"' is protected")):
			t.Errorf("%s: got %v, want branch %q protected", c.name, err, c.refused)
		}
	}
}
