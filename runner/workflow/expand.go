package workflow

import "strings"

// Vars are the values Expand substitutes.
type Vars struct {
	Branch string            // short branch name, e.g. "main", for {branch}
	Repo   string            // repository name, e.g. "my-project", for {repo}
	Env    map[string]string // for {env.NAME}
}

// Expand applies Kod interpolation to s: {branch}, {repo} and {env.NAME} are
// replaced by their values. A placeholder Expand does not know, such as
// `{x}`, `{ branch }` or `{env.UNSET}` for a variable not in vars.Env, is
// left exactly as written (Kod leaves unknown `{x}` alone; an unset variable
// is treated the same way so the mistake shows in the log). Replacement is a
// single pass: text coming from a value is never expanded again.
//
// Shell text is not special: `${branch}` holds `{branch}` and becomes `$main`,
// as it did in Kod, while `${HOME}` is left alone. Only legacy steps are
// expanded (Step.Interpolate); TOML scripts run as written.
func Expand(s string, vars Vars) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open+1:], '}')
		if end < 0 {
			break
		}
		end += open + 1
		if v, ok := vars.lookup(s[open+1 : end]); ok {
			b.WriteString(s[:open])
			b.WriteString(v)
			s = s[end+1:]
			continue
		}
		// Not a placeholder: keep the brace and look again after it, so
		// `{{branch}}` still finds `{branch}`.
		b.WriteString(s[:open+1])
		s = s[open+1:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s)
	return b.String()
}

func (v Vars) lookup(name string) (string, bool) {
	switch name {
	case "branch":
		return v.Branch, true
	case "repo":
		return v.Repo, true
	}
	env, ok := strings.CutPrefix(name, "env.")
	if !ok || !validEnvName(env) {
		return "", false
	}
	val, ok := v.Env[env]
	return val, ok
}
