package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/forge"
)

func pubKey(t *testing.T, comment string) (string, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
	return line + " " + comment, forge.Fingerprint(k)
}

func keyBody(publicKey, name, username string) string {
	b, _ := json.Marshal(map[string]string{"publicKey": publicKey, "name": name, "username": username})
	return string(b)
}

// TestKeysAPI covers Kod's GET/POST/DELETE /keys: own keys, admins acting
// for others, the global 409, and every refusal with its message.
func TestKeysAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.store.CreateRepo(ctx, &forge.Repo{Name: "r", Collaborators: []forge.Collaborator{{Username: "alice"}, {Username: "bob"}}})
	alice := e.token([]forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}, "alice")
	bob := e.token([]forge.Permission{forge.PermRepoRead}, "bob")
	system := e.token([]forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}, "")
	noRepo := e.token([]forge.Permission{forge.PermWorkflowRead}, "alice")
	noPerms := e.token([]forge.Permission{}, "alice")
	keyA, fpA := pubKey(t, "alice@laptop")
	keyB, _ := pubKey(t, "")

	var created forge.SSHKey
	code, body, _ := e.req("POST", "/keys", bearer(alice), keyBody(keyA, "", ""))
	if code != 201 || json.Unmarshal([]byte(body), &created) != nil {
		t.Fatalf("add own key: %d %s", code, body)
	}
	if created.Username != "alice" || created.Name != "alice@laptop" || created.Fingerprint != fpA || created.KeyType != "ssh-ed25519" ||
		created.PublicKey != strings.TrimSuffix(keyA, " alice@laptop") || len(created.ID) != 12 || created.CreatedAt == 0 ||
		created.AddedByTokenID != e.tokenID(alice) || created.AddedByAdmin {
		t.Errorf("created: %+v", created)
	}
	if !strings.Contains(body, `"addedByTokenId":"`+e.tokenID(alice)+`"`) || !strings.Contains(body, `"addedByAdmin":false`) {
		t.Errorf("the adding token is not shown: %s", body)
	}
	cases := []struct {
		name, method, path, auth, body string
		code                           int
		msg                            string
	}{
		{"duplicate, same user", "POST", "/keys", alice, keyBody(keyA, "again", ""), 409, "SSH key already exists"},
		{"duplicate, another user", "POST", "/keys", admin, keyBody(keyA, "", "bob"), 409, "SSH key already exists"},
		{"invalid key", "POST", "/keys", alice, keyBody("ssh-ed25519 nope", "", ""), 400, "Invalid SSH public key: expected one line like 'ssh-ed25519 AAAA... comment'"},
		{"missing key", "POST", "/keys", alice, `{}`, 400, "Public key is required"},
		{"unknown field", "POST", "/keys", alice, `{"publicKey":"x","owner":"y"}`, 400, `Unknown field "owner"`},
		{"for another user", "POST", "/keys", alice, keyBody(keyB, "", "bob"), 403, "Admin permission required to add a key for another user"},
		{"system token", "POST", "/keys", system, keyBody(keyB, "", ""), 400, "This token has no username"},
		{"admin without username", "POST", "/keys", admin, keyBody(keyB, "", ""), 400, "This token has no username"},
		{"admin, unknown user", "POST", "/keys", admin, keyBody(keyB, "", "ghost"), 400, "User 'ghost' not found"},
		{"list another user's", "GET", "/keys?username=alice", bob, "", 403, "Admin permission required"},
		// A token that cannot read repositories manages no keys (the finding:
		// a token holding nothing added a key and pushed with it).
		{"add without repo:read", "POST", "/keys", noRepo, keyBody(keyB, "", ""), 403, "Permission denied: managing SSH keys requires a token with repo:read"},
		{"add holding nothing", "POST", "/keys", noPerms, keyBody(keyB, "", ""), 403, "Permission denied: managing SSH keys requires a token with repo:read"},
		{"list without repo:read", "GET", "/keys", noRepo, "", 403, "Permission denied: managing SSH keys"},
		{"delete without repo:read", "DELETE", "/keys/" + created.ID, noRepo, "", 403, "Permission denied: managing SSH keys"},
		{"list, system token", "GET", "/keys", system, "", 400, "This token has no username"},
		{"delete another user's", "DELETE", "/keys/" + created.ID, bob, "", 404, "SSH key not found"},
		{"delete unknown", "DELETE", "/keys/nope", alice, "", 404, "SSH key not found"},
	}
	for _, c := range cases {
		code, body, _ := e.req(c.method, c.path, bearer(c.auth), c.body)
		var got struct{ Error string }
		_ = json.Unmarshal([]byte(body), &got)
		if code != c.code || !strings.HasPrefix(got.Error, c.msg) {
			t.Errorf("%s: %d %s, want %d %q", c.name, code, body, c.code, c.msg)
		}
	}

	// An admin adds a key for bob; lists show the right keys to the right people.
	var bobsKey forge.SSHKey
	if code, body, _ := e.req("POST", "/keys", bearer(admin), keyBody(keyB, "bob's", "bob")); code != 201 || json.Unmarshal([]byte(body), &bobsKey) != nil ||
		bobsKey.AddedByTokenID != e.tokenID(admin) || !bobsKey.AddedByAdmin {
		t.Fatalf("admin adds bob's key: %d %s", code, body)
	}
	list := func(auth, query string) []forge.SSHKey {
		code, body, _ := e.req("GET", "/keys"+query, bearer(auth), "")
		var keys []forge.SSHKey
		if code != 200 || json.Unmarshal([]byte(body), &keys) != nil {
			t.Fatalf("GET /keys%s: %d %s", query, code, body)
		}
		return keys
	}
	if keys := list(alice, ""); len(keys) != 1 || keys[0].ID != created.ID {
		t.Errorf("alice's list: %+v", keys)
	}
	if keys := list(bob, "?username=bob"); len(keys) != 1 || keys[0].Name != "bob's" {
		t.Errorf("bob's list: %+v", keys)
	}
	if keys := list(admin, "?username=alice"); len(keys) != 1 || keys[0].Username != "alice" {
		t.Errorf("admin lists alice's: %+v", keys)
	}
	if keys := list(admin, ""); len(keys) != 2 {
		t.Errorf("admin lists all: %+v", keys)
	}
	if keys := list(admin, "?username=nobody"); len(keys) != 0 {
		t.Errorf("nobody's keys: %+v", keys)
	}

	// Removal: own key, then an admin removes bob's.
	if code, body, _ := e.req("DELETE", "/keys/"+created.ID, bearer(alice), ""); code != 204 {
		t.Errorf("delete own: %d %s", code, body)
	}
	if _, err := e.store.KeyByFingerprint(ctx, fpA); err == nil {
		t.Error("deleted key still in the store")
	}
	bobs := list(bob, "")
	if code, body, _ := e.req("DELETE", "/keys/"+bobs[0].ID, bearer(admin), ""); code != 204 {
		t.Errorf("admin deletes bob's: %d %s", code, body)
	}
	if keys := list(admin, ""); len(keys) != 0 {
		t.Errorf("left: %+v", keys)
	}
	// Any token of a user holding repo:read manages that user's keys,
	// including keys other tokens added (the key grants only what the
	// token that added it holds).
	readOnly := e.token([]forge.Permission{forge.PermRepoRead}, "alice")
	keyC, _ := pubKey(t, "")
	var c forge.SSHKey
	code, body, _ = e.req("POST", "/keys", bearer(readOnly), keyBody(keyC, "", ""))
	if code != 201 || json.Unmarshal([]byte(body), &c) != nil || c.Username != "alice" || c.AddedByTokenID != e.tokenID(readOnly) {
		t.Errorf("a read-only token adds its user's key: %d %s", code, body)
	}
	if code, body, _ := e.req("DELETE", "/keys/"+c.ID, bearer(alice), ""); code != 204 {
		t.Errorf("another token of the user removes it: %d %s", code, body)
	}
	// The removed key can be added again.
	if code, body, _ := e.req("POST", "/keys", bearer(alice), keyBody(keyA, "", "")); code != 201 {
		t.Errorf("re-add: %d %s", code, body)
	}
}
