package workflow

import (
	"strings"
	"testing"
)

func TestParseCondition(t *testing.T) {
	tests := []struct {
		in      string
		want    Condition // Source is the trimmed input
		wantErr string
	}{
		{in: "branch == 'main'", want: Condition{Var: "branch", Value: "main"}},
		{in: `branch != "main"`, want: Condition{Var: "branch", Negate: true, Value: "main"}},
		{in: "  env.DEPLOY=='yes'  ", want: Condition{Var: "env.DEPLOY", Value: "yes"}},
		{in: "env._X\t!=\t''", want: Condition{Var: "env._X", Negate: true, Value: ""}},
		{in: `branch == 'it"s'`, want: Condition{Var: "branch", Value: `it"s`}},
		{in: "branch == 'release/1.0 # x'", want: Condition{Var: "branch", Value: "release/1.0 # x"}},
		{in: "", wantErr: "empty condition"},
		{in: "   ", wantErr: "empty condition"},
		{in: "tag == 'v1'", wantErr: "must start with branch or env.NAME"},
		{in: "env.1X == 'a'", wantErr: "must start with branch or env.NAME"},
		{in: "env. == 'a'", wantErr: "must start with branch or env.NAME"},
		{in: "branch = 'main'", wantErr: "expected == or !="},
		{in: "branch", wantErr: "expected == or !="},
		{in: "branch == main", wantErr: "must be quoted"},
		{in: "branch ==", wantErr: "must be quoted"},
		{in: "branch == 'main", wantErr: "missing closing '"},
		{in: `branch == "main'`, wantErr: `missing closing "`},
		{in: "branch == 'main' && env.X == 'y'", wantErr: "only one comparison"},
		{in: "branch == 'a''b'", wantErr: "only one comparison"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := ParseCondition(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Source = strings.TrimSpace(tt.in)
			if *c != tt.want {
				t.Errorf("got %+v, want %+v", *c, tt.want)
			}
		})
	}
}

func TestConditionEval(t *testing.T) {
	env := map[string]string{"DEPLOY": "yes", "EMPTY": ""}
	tests := []struct {
		cond   string // "" means a nil condition
		branch string
		want   bool
	}{
		{"", "main", true},
		{"branch == 'main'", "main", true},
		{"branch == 'main'", "dev", false},
		{"branch != 'main'", "main", false},
		{"branch != 'main'", "dev", true},
		{"env.DEPLOY == 'yes'", "x", true},
		{"env.DEPLOY != 'yes'", "x", false},
		{"env.UNSET == ''", "x", true},
		{"env.UNSET != ''", "x", false},
		{"env.EMPTY == ''", "x", true},
		{"env.deploy == 'yes'", "x", false}, // names are case sensitive
	}
	for _, tt := range tests {
		t.Run(tt.cond+"/"+tt.branch, func(t *testing.T) {
			var c *Condition
			if tt.cond != "" {
				var err error
				if c, err = ParseCondition(tt.cond); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Eval(tt.branch, env); got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
			if c.String() != tt.cond {
				t.Errorf("String() = %q", c.String())
			}
		})
	}
}
