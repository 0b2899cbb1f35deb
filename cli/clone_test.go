package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSameServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		server, url string
		same        bool
	}{
		{"http://kod.example:3000", "http://kod.example:3000/repos/app.git", true},
		{"http://kod.example:3000/", "http://KOD.example:3000/repos/app.git", true},
		{"http://kod.example", "http://kod.example:80/repos/app.git", true},
		{"https://kod.example:443", "https://kod.example/repos/app.git", true},
		{"http://kod.example:3000", "http://user:pw@kod.example:3000/repos/app.git", true},
		{"http://[::1]:3000", "http://[::1]:3000/repos/app.git", true},
		{"http://kod.example:3000", "http://kod.example:3001/repos/app.git", false},
		{"http://kod.example:3000", "https://kod.example:3000/repos/app.git", false},
		{"http://kod.example:3000", "http://evil.example:3000/repos/app.git", false},
		{"http://kod.example:3000", "http://kod.example.evil.example:3000/x", false},
		{"http://kod.example:3000", "http://evil.example/kod.example:3000", false},
		{"http://kod.example:3000", "http://kod.example:3000@evil.example/x", false},
		{"http://localhost:3000", "http://127.0.0.1:3000/repos/app.git", false},
		{"http://kod.example", "http://kod.example:443/x", false},
		{"http://kod.example:3000", "ssh://kod.example:3000/app.git", false},
		{"http://kod.example:3000", "::not a url", false},
	}
	for _, c := range cases {
		if got := sameServer(c.server, c.url); got != c.same {
			t.Errorf("sameServer(%q, %q) = %v, want %v", c.server, c.url, got, c.same)
		}
	}
}

// TestCloneToken: the configured token goes only to the configured
// server; a token given with -c goes to the URL the user named.
func TestCloneToken(t *testing.T) {
	t.Parallel()
	s := clientSettings{Server: "http://kod.example:3000", Token: "kod_configured"}
	cases := []struct {
		name, src, explicit string
		want                string
		ours                bool
		note                string
	}{
		{"the configured server", "http://kod.example:3000/repos/app.git", "", "kod_configured", true, ""},
		{"another host", "http://evil.example:3000/repos/app.git", "", "", false, "not sending the configured token to http://evil.example:3000: it is for http://kod.example:3000"},
		{"another port", "http://kod.example:4000/repos/app.git", "", "", false, "not sending the configured token"},
		{"-c for another host", "http://other.example/repos/app.git", "kod_chosen", "kod_chosen", false, ""},
		{"-c for the server", "http://kod.example:3000/repos/app.git", "kod_chosen", "kod_chosen", false, ""},
		{"ssh", "ssh://git@kod.example:2222/app.git", "", "", false, ""},
	}
	for _, c := range cases {
		var note bytes.Buffer
		tok, ours := cloneToken(&note, s, c.src, c.explicit)
		if tok != c.want || ours != c.ours || !strings.Contains(note.String(), c.note) || c.note == "" && note.Len() > 0 {
			t.Errorf("%s: token %q ours %v note %q; want %q %v %q", c.name, tok, ours, note.String(), c.want, c.ours, c.note)
		}
	}
	if tok, _ := cloneToken(&bytes.Buffer{}, clientSettings{Server: s.Server}, "http://kod.example:3000/r.git", ""); tok != "" {
		t.Errorf("no configured token: %q", tok)
	}
}

// TestGitCredentialAnswersOnlyForTheServer: `kod git-credential get`
// answers with the configured token for the configured server only.
func TestGitCredentialAnswersOnlyForTheServer(t *testing.T) {
	t.Parallel()
	env := map[string]string{"KOD_SERVER_URL": "http://kod.example:3000", "KOD_API_TOKEN": "kod_configured"}
	cases := []struct {
		name, request string
		answer        bool
	}{
		{"the server", "protocol=http\nhost=kod.example:3000\n", true},
		{"the server, other case", "protocol=http\nhost=KOD.EXAMPLE:3000\npath=repos/app.git\n", true},
		{"another host", "protocol=http\nhost=evil.example:3000\n", false},
		{"another port", "protocol=http\nhost=kod.example:3001\n", false},
		{"https", "protocol=https\nhost=kod.example:3000\n", false},
		{"no host", "protocol=http\n", false},
		{"host with a path", "protocol=http\nhost=kod.example:3000/x@evil.example\n", false},
		{"protocol smuggling a host", "protocol=http://kod.example:3000/?\nhost=evil.example\n", false},
	}
	for _, c := range cases {
		res := runCLI(t, nil, env, c.request+"\n", "git-credential", "get")
		answered := strings.Contains(res.stdout, "password=kod_configured")
		if res.code != 0 || answered != c.answer {
			t.Errorf("%s: exit %d, stdout %q; want answer %v", c.name, res.code, res.stdout, c.answer)
		}
	}
	if res := runCLI(t, nil, env, "protocol=http\nhost=kod.example:3000\n\n", "git-credential", "store"); res.code != 0 || res.stdout != "" {
		t.Errorf("store: %+v", res)
	}
}

// TestCredentialHelperCarriesKodHome: the helper `kod clone` records runs
// kod with the KOD_HOME and KOD_CONFIG it was set up with (quoted for the
// shell git runs it with), so a later push from a shell without them
// still finds the token; without them set, none is added.
func TestCredentialHelperCarriesKodHome(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	self := filepath.Join(dir, "it's kod")
	if err := os.WriteFile(self, []byte("#!/bin/sh\necho \"home=$KOD_HOME config=$KOD_CONFIG args=$*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "a home's $dir")
	env := map[string]string{"KOD_HOME": home, "KOD_CONFIG": filepath.Join(home, "c.json")}
	helper := credentialHelper(self, func(k string) string { return env[k] }, "--clone", "c1")
	if !strings.HasPrefix(helper, "!KOD_HOME=") {
		t.Fatalf("helper %q does not set KOD_HOME", helper)
	}
	// git runs "!cmd" as: sh -c 'cmd "$@"' cmd get
	sh := exec.Command("sh", "-c", helper[1:]+` "$@"`, helper[1:], "get")
	sh.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "home=" + home + " config=" + env["KOD_CONFIG"] + " args=git-credential --clone c1 get\n"
	if string(out) != want {
		t.Errorf("helper %q printed %q, want %q", helper, out, want)
	}
	if got, want := credentialHelper("/bin/kod", func(string) string { return "" }), "!'/bin/kod' git-credential"; got != want {
		t.Errorf("without KOD_HOME: %q, want %q", got, want)
	}
}
