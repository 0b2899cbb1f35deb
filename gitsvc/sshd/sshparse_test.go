package sshd

import (
	"strings"
	"testing"
)

func TestRepoNameFromPath(t *testing.T) {
	for _, ok := range []string{"my-project.git", "/my-project.git", "repos/my-project.git", "/repos/my-project.git", "my-project", "/my-project.git/", "my-project/"} {
		if name, err := repoNameFromPath(ok); err != nil || name != "my-project" {
			t.Errorf("%q: %q %v", ok, name, err)
		}
	}
	for _, bad := range []string{"", "/", ".git", "../x.git", "/repos/../x.git", "a/b.git", "~/x.git", "-x.git", "x.git/hooks", "%2e%2e", "x y.git", "/srv/repos/x.git", "repos/repos/x.git"} {
		if name, err := repoNameFromPath(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, name)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  repos  ", []string{"repos"}},
		{"git-upload-pack '/my project.git'", []string{"git-upload-pack", "/my project.git"}},
		{`git-upload-pack 'it'\''s.git'`, []string{"git-upload-pack", "it's.git"}},
		{`info "a\"b" c\ d`, []string{"info", `a"b`, "c d"}},
		{"info\tx\ny", []string{"info", "x", "y"}},
		{"a''b", []string{"ab"}},
		{"''", []string{""}},
	}
	for _, c := range cases {
		got, err := splitCommand(c.in)
		if err != nil || strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("%q: %q %v, want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"'x", `"x`, `info "a\"`} {
		if got, err := splitCommand(bad); err == nil {
			t.Errorf("%q: %q, want an error", bad, got)
		}
	}
}
