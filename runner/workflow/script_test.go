package workflow

import (
	"os/exec"
	"strings"
	"testing"
)

func legacyStep(t *testing.T, script string) *Step {
	t.Helper()
	wf, err := Parse("ci.toml", []byte("[step:s]\nrun:\n"+script))
	if err != nil {
		t.Fatal(err)
	}
	return &wf.Steps[0]
}

func TestScript(t *testing.T) {
	vars := Vars{Branch: "main", Repo: "web", Env: map[string]string{"BUILD": "7"}}
	tests := []struct {
		name   string
		script string // indented under run:
		vars   Vars
		want   string
	}{
		{"plain interpolation", "  echo {branch} {repo} {env.BUILD}\n", vars, "echo main web 7"},
		{"export", "  env.V = \"1.{env.BUILD}\"\n", vars, "V='1.7'; export V"},
		{"single quotes in value", "  env.V = \"{env.Q}\"\n",
			Vars{Env: map[string]string{"Q": "it's 'quoted'"}}, `V='it'\''s '\''quoted'\'''; export V`},
		{"newline in value", "  env.V = {env.NL}\n", Vars{Env: map[string]string{"NL": "a\nb"}}, "V='a\nb'; export V"},
		{"later lines see the export", "  env.A = x{branch}\n  echo {env.A}\n  env.B = {env.A}-b\n", vars,
			"A='xmain'; export A\necho xmain\nB='xmain-b'; export B"},
		{"indented export keeps its indent", "  if true; then\n    env.A = 1\n  fi\n", vars, "if true; then\n  A='1'; export A\nfi"},
		{"unknown placeholders stay", "  echo {x} {env.NOPE} ${HOME}\n", vars, "echo {x} {env.NOPE} ${HOME}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := legacyStep(t, tt.script)
			if got := s.Script(tt.vars); got != tt.want {
				t.Errorf("Script =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestScriptDoesNotMutateVars(t *testing.T) {
	env := map[string]string{"A": "1"}
	s := legacyStep(t, "  env.A = 2\n  env.B = 3\n")
	s.Script(Vars{Env: env})
	s.ExportValues(Vars{Env: env})
	if len(env) != 1 || env["A"] != "1" {
		t.Errorf("env changed: %v", env)
	}
}

func TestScriptTOMLUnchanged(t *testing.T) {
	wf, err := Parse("ci.toml", []byte("[[steps]]\nname = \"a\"\nrun = \"echo {branch} ${HOME}\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := wf.Steps[0]
	if got := s.Script(Vars{Branch: "main"}); got != s.Run {
		t.Errorf("Script = %q, want Run %q", got, s.Run)
	}
	if s.ExportValues(Vars{}) != nil {
		t.Error("TOML step has exports")
	}
}

func TestExportValues(t *testing.T) {
	s := legacyStep(t, "  env.A = \"{branch}'\"\n  echo no\n  env.B = {env.A}{env.A}\n")
	got := s.ExportValues(Vars{Branch: "dev"})
	want := []EnvVar{{"A", "dev'"}, {"B", "dev'dev'"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ExportValues = %v, want %v", got, want)
	}
}

// TestScriptShell runs the scripts with the real sh: whatever the values,
// the exports hold them byte for byte and nothing in them is executed.
func TestScriptShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	values := []string{
		"plain", "", "it's", "'", "''", `"double"`, "a\nb\n", "$(echo pwned)", "`echo pwned`",
		"$HOME", `back\slash`, "; echo pwned", "# not a comment", "tab\there", "ünïcode",
	}
	s := legacyStep(t, "  env.V = \"<{env.IN}>\"\n  printf '%s' \"$V\"\n")
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			script := s.Script(Vars{Env: map[string]string{"IN": v}})
			out, err := exec.Command(sh, "-e", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("sh: %v\n%s\nscript:\n%s", err, out, script)
			}
			if string(out) != "<"+v+">" {
				t.Errorf("got %q, want %q", out, "<"+v+">")
			}
			if strings.Contains(string(out), "pwned\n") {
				t.Error("value was executed")
			}
		})
	}
}
