package workflow

import (
	"maps"
	"strings"
)

// Script returns the shell script the runner executes for the step (with
// `sh -e -c`). TOML steps return Run unchanged. Legacy steps (Interpolate)
// get Kod interpolation (see Expand) with vars, line by line, and each
// `env.NAME = "v"` directive, which the parser turned into an export line,
// is rebuilt with the expanded value single-quoted for the shell, so any
// value (quotes, `$`, backticks, newlines) is taken literally and cannot
// break out of the assignment. An exported value is visible to
// {env.NAME} on the later lines of the same step, as in Kod; vars.Env itself
// is not modified.
func (s *Step) Script(vars Vars) string {
	if !s.Interpolate {
		return s.Run
	}
	vars.Env = maps.Clone(vars.Env)
	if vars.Env == nil {
		vars.Env = map[string]string{}
	}
	lines := strings.Split(s.Run, "\n")
	next := 0 // index in s.Exports of the next export line to meet
	for i, line := range lines {
		if next < len(s.Exports) {
			e := s.Exports[next]
			if indent, ok := strings.CutSuffix(line, exportLine(e.Name, e.Value)); ok && isBlank(indent) {
				val := Expand(e.Value, vars)
				vars.Env[e.Name] = val
				lines[i] = indent + exportLine(e.Name, val)
				next++
				continue
			}
		}
		lines[i] = Expand(line, vars)
	}
	return strings.Join(lines, "\n")
}

// ExportValues returns the step's Exports with their values expanded the way
// Script expands them (each export sees the ones before it). The runner adds
// them to the environment of every later step once this step has run.
func (s *Step) ExportValues(vars Vars) []EnvVar {
	if len(s.Exports) == 0 {
		return nil
	}
	vars.Env = maps.Clone(vars.Env)
	if vars.Env == nil {
		vars.Env = map[string]string{}
	}
	out := make([]EnvVar, len(s.Exports))
	for i, e := range s.Exports {
		val := e.Value
		if s.Interpolate {
			val = Expand(val, vars)
		}
		vars.Env[e.Name] = val
		out[i] = EnvVar{Name: e.Name, Value: val}
	}
	return out
}

// exportLine is the shell line that stands for `env.NAME = "value"`:
// NAME='value'; export NAME.
func exportLine(name, value string) string {
	return name + "=" + shellQuote(value) + "; export " + name
}

// shellQuote single-quotes s for POSIX sh: inside single quotes nothing is
// special, and each single quote becomes quote, backslash, quote, quote
// (close the string, an escaped quote, reopen it).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func isBlank(s string) bool { return strings.Trim(s, " \t") == "" }
