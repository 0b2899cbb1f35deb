package workflow

import (
	"fmt"
	"strings"
)

// conditionForms lists what an `if` may say, for error messages.
const conditionForms = "branch == 'v', branch != 'v', env.NAME == 'v' or env.NAME != 'v'"

// ParseCondition parses an `if` expression in one of Kod's four forms:
// `branch == 'v'`, `branch != 'v'`, `env.NAME == 'v'`, `env.NAME != 'v'`.
// The value is quoted with single or double quotes (no escapes: it ends at
// the next matching quote); whitespace around the parts is free. Anything
// else (an unquoted value, `&&`, another variable, trailing text) is an error
// naming what was wrong and the forms allowed.
func ParseCondition(s string) (*Condition, error) {
	src := strings.TrimSpace(s)
	if src == "" {
		return nil, fmt.Errorf("empty condition; use %s", conditionForms)
	}
	n := 0
	for n < len(src) && (src[n] == '.' || src[n] == '_' || isAlnum(src[n])) {
		n++
	}
	v := src[:n]
	if v != "branch" && !(strings.HasPrefix(v, "env.") && validEnvName(v[len("env."):])) {
		return nil, fmt.Errorf("condition %q: must start with branch or env.NAME; use %s", src, conditionForms)
	}
	rest := strings.TrimLeft(src[n:], " \t")
	op := rest[:min(2, len(rest))]
	if op != "==" && op != "!=" {
		return nil, fmt.Errorf("condition %q: expected == or != after %s", src, v)
	}
	rest = strings.TrimLeft(rest[2:], " \t")
	if rest == "" || (rest[0] != '\'' && rest[0] != '"') {
		return nil, fmt.Errorf("condition %q: the value must be quoted, e.g. %s %s 'main'", src, v, op)
	}
	end := strings.IndexByte(rest[1:], rest[0])
	if end < 0 {
		return nil, fmt.Errorf("condition %q: missing closing %c", src, rest[0])
	}
	if tail := strings.TrimSpace(rest[end+2:]); tail != "" {
		return nil, fmt.Errorf("condition %q: unexpected %q after the value; only one comparison is supported", src, tail)
	}
	return &Condition{Source: src, Var: v, Negate: op == "!=", Value: rest[1 : end+1]}, nil
}

// Eval reports whether the condition holds on branch (the short name, e.g.
// "main") with env (the variables the step would see; an unset variable
// compares as ""). A nil *Condition always holds.
func (c *Condition) Eval(branch string, env map[string]string) bool {
	if c == nil {
		return true
	}
	got := branch
	if name, ok := strings.CutPrefix(c.Var, "env."); ok {
		got = env[name]
	}
	return (got == c.Value) != c.Negate
}

// String returns the condition as written ("" for nil, which always holds).
func (c *Condition) String() string {
	if c == nil {
		return ""
	}
	return c.Source
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
