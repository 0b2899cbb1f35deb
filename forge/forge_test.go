package forge

import (
	"errors"
	"strings"
	"testing"
)

func TestAuthorizeOrder(t *testing.T) {
	repo := &Repo{Name: "r", OwnerTokenID: "owner", Collaborators: []Collaborator{{Username: "alice"}}}
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
		{"stranger sees nothing", &Principal{TokenID: "c", Username: "bob", Permissions: []Permission{PermRepoWrite}}, write, repo, ErrNotFound, "Repository not found"},
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
	if err := CheckRefUpdates(&Principal{TokenID: "o"}, r, []RefUpdate{u}); err != nil {
		t.Errorf("owner refused: %v", err)
	}
}
