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

// matchSegments decides by dynamic programming over (pattern index, segment
// index), so a pattern alternating `**` with fixed segments costs
// O(len(pat) x len(segs)) segment matches, never the exponential
// backtracking a recursive match takes (a pusher controls both the pattern
// and the branch, and the match runs inside the push).
func matchSegments(pat, segs []string) bool {
	n, m := len(pat), len(segs)
	// next[j] is the answer for pat[i+1:] against segs[j:], cur[j] for pat[i:].
	next := make([]bool, m+1)
	cur := make([]bool, m+1)
	next[m] = true // the empty pattern matches only the empty rest
	for i := n - 1; i >= 0; i-- {
		switch {
		case pat[i] == "**" && i+1 < n && pat[i+1] == "**":
			// A run of `**` acts as one: the answer of the run's last one.
			copy(cur, next)
		case pat[i] == "**" && i == n-1:
			// `**` at the end needs at least one segment.
			for j := 0; j <= m; j++ {
				cur[j] = j < m
			}
		case pat[i] == "**":
			// Zero segments (the rest of the pattern here) or one more.
			cur[m] = next[m]
			for j := m - 1; j >= 0; j-- {
				cur[j] = next[j] || cur[j+1]
			}
		default:
			cur[m] = false
			for j := m - 1; j >= 0; j-- {
				cur[j] = next[j+1] && matchSegment(pat[i], segs[j])
			}
		}
		next, cur = cur, next
	}
	return next[0]
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
