package workflow

import "testing"

func TestExpand(t *testing.T) {
	vars := Vars{Branch: "main", Repo: "web", Env: map[string]string{
		"BUILD": "42", "EMPTY": "", "LOOP": "{branch}",
	}}
	tests := []struct {
		name, in, want string
	}{
		{"no braces", "make test", "make test"},
		{"branch and repo", "on {branch} of {repo}", "on main of web"},
		{"env", "v1.{env.BUILD}", "v1.42"},
		{"env set to empty", "[{env.EMPTY}]", "[]"},
		{"unset env left alone", "{env.UNSET}", "{env.UNSET}"},
		{"unknown left alone", "{x} {Branch} { branch } {env.} {env.1A}", "{x} {Branch} { branch } {env.} {env.1A}"},
		{"shell ${branch} is Kod interpolation", "echo ${branch}", "echo $main"},
		{"shell ${HOME} untouched", "echo ${HOME} $HOME", "echo ${HOME} $HOME"},
		{"double braces", "{{branch}}", "{main}"},
		{"unclosed", "echo {branch", "echo {branch"},
		{"brace inside", "{a{branch}}", "{amain}"},
		{"awk block untouched", "awk '{print $1}'", "awk '{print $1}'"},
		{"single pass", "{env.LOOP}", "{branch}"},
		{"adjacent", "{branch}{repo}{env.BUILD}", "mainweb42"},
		{"unicode around", "é{branch}é", "émainé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expand(tt.in, vars); got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := Expand("{branch}/{env.X}", Vars{}); got != "/{env.X}" {
		t.Errorf("zero Vars: got %q", got)
	}
}
