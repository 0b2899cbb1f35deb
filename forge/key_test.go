package forge

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// keygen makes a key with the real ssh-keygen and returns its public line
// and the fingerprint `ssh-keygen -lf` prints for it.
func keygen(t *testing.T, args ...string) (pub, fp string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", append([]string{"-q", "-N", "", "-C", "alice@laptop", "-f", path}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	data, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keygen", "-lf", path+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(data), strings.Fields(string(out))[1]
}

func TestSSHKeysFromSSHKeygen(t *testing.T) {
	t.Parallel()
	accepted := []struct {
		args     []string
		wantType string
	}{
		{[]string{"-t", "ed25519"}, "ssh-ed25519"},
		{[]string{"-t", "ecdsa", "-b", "256"}, "ecdsa-sha2-nistp256"},
		{[]string{"-t", "ecdsa", "-b", "521"}, "ecdsa-sha2-nistp521"},
		{[]string{"-t", "rsa", "-b", "2048"}, "ssh-rsa"},
	}
	for _, c := range accepted {
		pub, fp := keygen(t, c.args...)
		k, err := NewSSHKey("alice", "  "+pub+"\n", "", nil)
		if err != nil {
			t.Fatalf("%v refused: %v", c.args, err)
		}
		if k.Fingerprint != fp || k.KeyType != c.wantType || k.Name != "alice@laptop" || k.Username != "alice" || len(k.ID) != 12 {
			t.Errorf("%v: %+v, want fingerprint %s (ssh-keygen -lf)", c.args, k, fp)
		}
		if want := strings.Join(strings.Fields(pub)[:2], " "); k.PublicKey != want {
			t.Errorf("%v: stored %q, want %q", c.args, k.PublicKey, want)
		}
	}
	refused := []struct {
		args []string
		msg  string
	}{
		{[]string{"-t", "rsa", "-b", "1024"}, "RSA key is 1024 bits: at least 2048 bits are required"},
		{[]string{"-t", "dsa"}, "Unsupported SSH key type ssh-dss"},
	}
	for _, c := range refused {
		pub, _ := keygen(t, c.args...)
		if _, err := NewSSHKey("alice", pub, "", nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: %v, want %q", c.args, err, c.msg)
		}
	}
}

func TestSSHKeyBadInput(t *testing.T) {
	t.Parallel()
	pub, _ := keygen(t, "-t", "ed25519")
	fields := strings.Fields(pub)
	sk := "sk-ssh-ed25519@openssh.com " + base64.StdEncoding.EncodeToString(ssh.Marshal(struct {
		Name, Key, App string
	}{"sk-ssh-ed25519@openssh.com", strings.Repeat("k", 32), "ssh:"}))
	cases := []struct{ in, msg string }{
		{"", "Public key is required"},
		{"   ", "Public key is required"},
		{"hello", "Invalid SSH public key"},
		{"ssh-ed25519 AAAA", "Invalid SSH public key"},
		{fields[0] + " " + fields[1][:20], "Invalid SSH public key"},
		{`command="/bin/sh" ` + pub, "options (command=\"/bin/sh\") are not allowed"},
		{pub + "\n" + pub, "one key per request"},
		{sk, "Unsupported SSH key type sk-ssh-ed25519@openssh.com"},
	}
	for _, c := range cases {
		if _, err := NewSSHKey("alice", c.in, "", nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want %q", c.in, err, c.msg)
		}
	}
	if _, err := NewSSHKey("alice", pub, strings.Repeat("n", 101), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("long name: %v", err)
	}
	if k, err := NewSSHKey("alice", fields[0]+" "+fields[1], "", nil); err != nil || k.Name != "ssh-ed25519" {
		t.Errorf("no comment, no name: %+v %v", k, err)
	}
	if k, err := NewSSHKey("alice", fields[0]+" "+fields[1]+" "+strings.Repeat("é", 80), "", nil); err != nil || len(k.Name) > MaxKeyNameLen {
		t.Errorf("long comment: %+v %v", k, err)
	}
}

func TestUserPrincipal(t *testing.T) {
	t.Parallel()
	tok := func(user string, expires Millis, perms ...Permission) *Token {
		return &Token{ID: NewID(), Username: user, ExpiresAt: expires, Permissions: perms}
	}
	repo := &Repo{Name: "r", OwnerTokenID: "t0", OwnerUsername: "olga", ProtectedBranches: []string{"main"}, Collaborators: []Collaborator{{Username: "alice"}}}
	read, write := Action{Perm: PermRepoRead}, Action{Perm: PermRepoWrite}
	main := []RefUpdate{{Old: zeroOID, New: strings.Repeat("a", 40), Ref: "refs/heads/main"}}
	cases := []struct {
		name           string
		user           string
		tokens         []*Token
		read, write    bool
		pushProtected  bool
		wantPermission []Permission
	}{
		{"collaborator without tokens", "alice", nil, false, false, false, []Permission{}},
		{"collaborator with a read-write token", "alice", []*Token{tok("alice", 0, PermRepoRead, PermRepoWrite)}, true, true, false, []Permission{PermRepoRead, PermRepoWrite}},
		{"collaborator with a workflow token only", "alice", []*Token{tok("alice", 0, PermWorkflowTrigger)}, false, false, false, []Permission{}},
		{"collaborator with a read-only token", "alice", []*Token{tok("alice", 0, PermRepoRead, PermWorkflowRead)}, true, false, false, []Permission{PermRepoRead}},
		{"expired tokens do not count", "alice", []*Token{tok("alice", 1, PermAdmin), tok("alice", 0, PermRepoRead)}, true, false, false, []Permission{PermRepoRead}},
		{"admin-linked user", "zed", []*Token{tok("zed", 0, PermAdmin), tok("alice", 0, PermRepoRead)}, true, true, true, []Permission{PermAdmin}},
		{"owner by username", "olga", []*Token{tok("olga", 0, PermRepoRead, PermRepoWrite)}, true, true, true, nil},
		{"stranger", "bob", []*Token{tok("alice", 0, PermAdmin)}, false, false, false, nil},
		{"no username", "", []*Token{tok("", 0, PermAdmin)}, false, false, false, []Permission{}},
	}
	for _, c := range cases {
		p := UserPrincipal(c.user, c.tokens, 1000)
		if p.TokenID != "" || p.Username != c.user {
			t.Errorf("%s: %+v", c.name, p)
		}
		if c.wantPermission != nil && strings.Join(permStrings(p.Permissions), ",") != strings.Join(permStrings(c.wantPermission), ",") {
			t.Errorf("%s: permissions %v, want %v", c.name, p.Permissions, c.wantPermission)
		}
		if got := Authorize(p, read, repo) == nil; got != c.read {
			t.Errorf("%s: read %v, want %v", c.name, got, c.read)
		}
		if got := Authorize(p, write, repo) == nil; got != c.write {
			t.Errorf("%s: write %v, want %v", c.name, got, c.write)
		}
		if got := c.write && CheckRefUpdates(p, repo, main) == nil; got != c.pushProtected {
			t.Errorf("%s: push protected %v, want %v", c.name, got, c.pushProtected)
		}
	}
	anon := AnonymousPrincipal()
	if Authorize(anon, read, repo) != nil || Authorize(anon, write, repo) == nil || anon.IsOwner(&Repo{OwnerUsername: ""}) {
		t.Errorf("anonymous: %+v", anon)
	}
}

func permStrings(ps []Permission) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, string(p))
	}
	return out
}
