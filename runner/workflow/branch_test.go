package workflow

import "testing"

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
