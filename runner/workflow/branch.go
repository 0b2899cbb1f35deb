package workflow

import "strings"

// MatchBranch reports whether branch (a short name such as "release/1.2")
// matches a trigger pattern from `[on] push`. Patterns are split on "/":
// `*` matches any run of characters inside one segment, a segment that is
// exactly `**` matches any number of whole segments (zero or more, except at
// the end of the pattern where it needs at least one, so "release/**" does
// not match "release"), and every other character matches itself. An empty
// pattern or branch never matches.
func MatchBranch(pattern, branch string) bool {
	if pattern == "" || branch == "" {
		return false
	}
	return matchSegments(strings.Split(pattern, "/"), strings.Split(branch, "/"))
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return len(segs) > 0
			}
			for k := range len(segs) + 1 {
				if matchSegments(pat, segs[k:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || !matchSegment(pat[0], segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// matchSegment matches one segment with `*` wildcards, backtracking only to
// the last star (linear in practice, no exponential blow-up).
func matchSegment(pat, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case p < len(pat) && pat[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}
