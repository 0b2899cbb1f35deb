package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strconv"
	"strings"

	"github.com/kod-forge/kod/runner/workflow"
)

// Limits of the names Compile makes, bytes.
const (
	maxKey      = 40 // Workflow.Key
	maxStepSlug = 40 // the step part of Step.ID
)

// key is a workflow instance's Key: the file's base name without its
// extension, then each matrix axis and value, as a slug ("ci",
// "ci-go-1-26-db-pg"); shortened with a hash of the whole when longer than
// maxKey, and made unique in the plan with a -N suffix.
func (c *compiler) key(file string, m []workflow.EnvVar) string {
	base := path.Base(file)
	base = strings.TrimSuffix(base, path.Ext(base))
	parts := []string{base}
	for _, v := range m {
		parts = append(parts, v.Name, v.Value)
	}
	k := slug(strings.Join(parts, "-"))
	if k == "" {
		k = "workflow"
	}
	return unique(c.keys, fit(k, maxKey), maxKey)
}

// label names a workflow instance for people: the file's base name, and
// the matrix values: "ci.toml (GO=1.26, DB=pg)".
func label(file string, m []workflow.EnvVar) string {
	l := path.Base(file)
	if len(m) == 0 {
		return l
	}
	vals := make([]string, len(m))
	for i, v := range m {
		vals[i] = v.Name + "=" + v.Value
	}
	return l + " (" + strings.Join(vals, ", ") + ")"
}

// stepSlug is the step part of a step ID: the name as a slug, or
// "step-N" (N = 1-based position in the file) when nothing of it is left.
func stepSlug(name string, i int) string {
	if s := fit(slug(name), maxStepSlug); s != "" {
		return s
	}
	return "step-" + strconv.Itoa(i+1)
}

// slug lowers ASCII letters, keeps digits, turns every other run of
// characters into one '-' and trims '-' at both ends.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r < 128 && ('a' <= r && r <= 'z' || '0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// fit shortens s to at most n bytes: the first part, '-', and 8 hex digits
// of the SHA-256 of the whole, so two long names stay apart.
func fit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	head := strings.TrimRight(s[:n-9], "-")
	return head + "-" + hex.EncodeToString(sum[:])[:8]
}

// unique returns s, or s-2, s-3... (shortened to n bytes) when used
// already has it, and records the result.
func unique(used map[string]bool, s string, n int) string {
	out := s
	for i := 2; used[out]; i++ {
		suffix := "-" + strconv.Itoa(i)
		out = strings.TrimRight(s[:min(len(s), n-len(suffix))], "-") + suffix
	}
	used[out] = true
	return out
}
