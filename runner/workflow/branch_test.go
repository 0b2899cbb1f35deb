package workflow

import (
	"strings"
	"testing"
	"time"
)

func TestMatchBranch(t *testing.T) {
	tests := []struct {
		pattern, branch string
		want            bool
	}{
		{"main", "main", true},
		{"main", "main2", false},
		{"main", "feature/main", false},
		{"*", "main", true},
		{"*", "feature/x", false},
		{"release/*", "release/1.0", true},
		{"release/*", "release/", true}, // empty segment; git refuses such names anyway
		{"release/*", "release", false},
		{"release/*", "release/1.0/hotfix", false},
		{"release-*", "release-2", true},
		{"*-rc", "v1-rc", true},
		{"v*.*", "v1.2", true},
		{"v*.*", "v12", false},
		{"**", "main", true},
		{"**", "a/b/c", true},
		{"release/**", "release/1.0", true},
		{"release/**", "release/a/b", true},
		{"release/**", "release", false},
		{"**/fix", "fix", true},
		{"**/fix", "a/b/fix", true},
		{"**/fix", "a/fix/b", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/**/b", "a/x/b", true},
		{"feat**", "feature", true}, // ** inside a segment is *
		{"feat**", "feat/x", false},
		{"", "main", false},
		{"main", "", false},
		{"Main", "main", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.branch, func(t *testing.T) {
			if got := MatchBranch(tt.pattern, tt.branch); got != tt.want {
				t.Errorf("MatchBranch(%q, %q) = %v, want %v", tt.pattern, tt.branch, got, tt.want)
			}
		})
	}
}

// matchSegmentsRecursive is the straightforward backtracking match the
// dynamic programme replaced; kept here as the reference for small inputs.
func matchSegmentsRecursive(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return len(segs) > 0
			}
			for k := range len(segs) + 1 {
				if matchSegmentsRecursive(pat, segs[k:]) {
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

// TestMatchBranchAgreesWithBacktracking: every pattern and branch of up to
// five segments over a small alphabet gets the answer of the reference
// backtracking match.
func TestMatchBranchAgreesWithBacktracking(t *testing.T) {
	patSegs := []string{"**", "*", "a", "b", "a*"}
	branchSegs := []string{"a", "b", "ab"}
	var pats, branches [][]string
	var grow func(acc []string, alphabet []string, depth int, out *[][]string)
	grow = func(acc []string, alphabet []string, depth int, out *[][]string) {
		if len(acc) > 0 {
			*out = append(*out, append([]string(nil), acc...))
		}
		if depth == 0 {
			return
		}
		for _, s := range alphabet {
			grow(append(acc, s), alphabet, depth-1, out)
		}
	}
	grow(nil, patSegs, 4, &pats)
	grow(nil, branchSegs, 5, &branches)
	for _, p := range pats {
		for _, b := range branches {
			pattern, branch := strings.Join(p, "/"), strings.Join(b, "/")
			if got, want := MatchBranch(pattern, branch), matchSegmentsRecursive(p, b); got != want {
				t.Fatalf("MatchBranch(%q, %q) = %v, backtracking says %v", pattern, branch, got, want)
			}
		}
	}
}

// TestMatchBranchHostilePatternEnds: a pattern alternating `**` with fixed
// segments against a long branch that almost matches took the backtracking
// match exponential time (28 segments: 17 s; 60: years) inside a push; it
// must end (the deadline only catches a hang).
func TestMatchBranchHostilePatternEnds(t *testing.T) {
	pattern := strings.Repeat("**/x/", 40) + "**/y"
	branch := strings.Repeat("x/", 119) + "x"
	done := make(chan bool, 1)
	go func() { done <- MatchBranch(pattern, branch) }()
	select {
	case got := <-done:
		if got {
			t.Error("a branch without a 'y' segment matched a pattern that needs one")
		}
	case <-time.After(time.Minute):
		t.Fatal("matching a hostile pattern did not end")
	}
	if !MatchBranch(pattern, branch+"/y") {
		t.Error("the same branch with a last 'y' segment did not match")
	}
}

// TestParseErrorQuotesControlCharacters: a workflow file name with a newline
// and terminal escapes is quoted in the error a push prints and a run keeps.
func TestParseErrorQuotesControlCharacters(t *testing.T) {
	e := &ParseError{File: ".kod/workflows/a\n\x1b[1;31mFAKE\x1b]0;pwned\x07.toml", Line: 3, Msg: "invalid git argument"}
	got := e.Error()
	if strings.ContainsAny(got, "\n\x1b\x07") {
		t.Errorf("control characters reached the error: %q", got)
	}
	if !strings.Contains(got, `\x1b[1;31mFAKE`) || !strings.HasSuffix(got, ":3: invalid git argument") {
		t.Errorf("error = %q", got)
	}
	if plain := (&ParseError{File: ".kod/workflows/ci.toml", Line: 2, Msg: "m"}).Error(); plain != ".kod/workflows/ci.toml:2: m" {
		t.Errorf("a plain name changed: %q", plain)
	}
}
