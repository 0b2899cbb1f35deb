package gitsvc

import (
	"net/netip"
	"testing"
)

func TestParseRemote(t *testing.T) {
	cases := []struct {
		in, scheme, host, port, name string
		local                        bool
	}{
		{"https://github.com/example/project.git", "https", "github.com", "", "project", false},
		{"http://u:p@host:8080/a/b/", "http", "host", "8080", "b", false},
		{"git://[::1]:9418/x.git", "git", "::1", "9418", "x", false},
		{"ssh://git@example.com/org/repo.git", "ssh", "example.com", "", "repo", false},
		{"git+ssh://example.com/repo", "ssh", "example.com", "", "repo", false},
		{"git@example.com:org/repo.git", "ssh", "example.com", "", "repo", false},
		{"example.com:repo.git", "ssh", "example.com", "", "repo", false},
		{"[::1]:org/r.git", "ssh", "::1", "", "r", false},
		{"file:///srv/git/proj.git", "file", "", "", "proj", true},
		{"/srv/git/proj.git/", "file", "", "", "proj", true},
		{"/srv/git/a:b/proj", "file", "", "", "proj", true},
	}
	for _, c := range cases {
		r, err := ParseRemote(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if r.Scheme != c.scheme || r.Host != c.host || r.Port != c.port || r.NameHint() != c.name || r.Local != c.local {
			t.Errorf("%s: %+v name %q", c.in, r, r.NameHint())
		}
	}
	for _, bad := range []string{"", "ext::sh -c x", "fd::3", "transport::x", "-u", "--upload-pack=x", "ftp://h/x", "relative/path",
		"file://remotehost/x", "ssh://-oProxyCommand=x/r", "-h:r", "https:///x", "a\nb", "git@:x"} {
		if r, err := ParseRemote(bad); err == nil {
			t.Errorf("%q accepted: %+v", bad, r)
		}
	}
	r, _ := ParseRemote("https://user:secret@host/x.git")
	if got := r.Redacted(); got != "https://user:xxxxx@host/x.git" {
		t.Errorf("redacted: %s", got)
	}
}

func TestPinning(t *testing.T) {
	r, _ := ParseRemote("https://example.com/x.git")
	addrs := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:2800::1"), netip.MustParseAddr("::ffff:1.2.3.4")}
	if got := pinnedAddrs(r, addrs); len(got) != 3 || got[0] != "93.184.216.34" || got[1] != "[2606:2800::1]" || got[2] != "1.2.3.4" {
		t.Errorf("pins: %v", got)
	}
	lit, _ := ParseRemote("https://93.184.216.34/x.git")
	if got := pinnedAddrs(lit, addrs); got != nil {
		t.Errorf("an address literal is pinned: %v", got)
	}
	if got := withHost("git://example.com/x.git", "[2606:2800::1]", ""); got != "git://[2606:2800::1]/x.git" {
		t.Errorf("withHost v6: %s", got)
	}
	if got := withHost("git://example.com:9000/x.git", "1.2.3.4", "9000"); got != "git://1.2.3.4:9000/x.git" {
		t.Errorf("withHost: %s", got)
	}
}
