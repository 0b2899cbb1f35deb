package workflow

import (
	"slices"
	"strings"
)

// PullPolicies are the values of `pull`: when a step's image is pulled.
var PullPolicies = []string{"if-not-present", "always", "never"}

// pull reads a `pull` value (workflow or step level).
func (p *tomlParser) pull(v any, step int, path ...string) (string, *ParseError) {
	s, perr := p.str(v, step, path...)
	if perr == nil && !slices.Contains(PullPolicies, s) {
		perr = errAt(p.keys.line(step, path...), "pull %q is not a pull policy; use %s", s, strings.Join(PullPolicies, ", "))
	}
	return s, perr
}
