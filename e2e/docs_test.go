package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// internalEnv are environment variables kod sets for its own child
// processes, never for users to set.
var internalEnv = []string{
	"KOD_HOOK_SOCKET", "KOD_HOOK_TOKEN", // git hooks reach the server (docs/layout.md tells the flow)
	"KOD_CLONE_TOKEN", // `kod clone` hands the token to its credential helper
}

var (
	mdLinkRE  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	envRE     = regexp.MustCompile(`"(KOD_[A-Z0-9_]+)"`)
)

// anchor is GitHub's id of a heading: lower case, punctuation dropped,
// spaces as hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestDocs: the README stays short (at most 250 lines), every relative
// link of the README and docs/ names a file and heading that exist, and
// every KOD_* variable the code reads is documented.
func TestDocs(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs: %v %v", files, err)
	}
	files = append(files, "../README.md")
	text := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text[filepath.Clean(f)] = string(b)
	}
	if n := strings.Count(text["../README.md"], "\n"); n > 250 {
		t.Errorf("README.md has %d lines; keep it at most 250 and move the rest to docs/", n)
	}
	anchors := func(f string) []string {
		var out []string
		for _, m := range headingRE.FindAllStringSubmatch(text[f], -1) {
			out = append(out, anchor(m[1]))
		}
		return out
	}
	for f, body := range text {
		for _, m := range mdLinkRE.FindAllStringSubmatch(body, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := f
			if file != "" {
				dest = filepath.Clean(filepath.Join(filepath.Dir(f), file))
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s links to %s, which does not exist", f, target)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if _, ok := text[dest]; !ok {
				t.Errorf("%s links to a heading of %s, which is not a doc", f, target)
			} else if !slices.Contains(anchors(dest), frag) {
				t.Errorf("%s links to %s: no such heading in %s", f, target, dest)
			}
		}
	}
	all := strings.Join(slices.Collect(maps.Values(text)), "\n")
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "e2e" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range envRE.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(internalEnv, m[1]) && !strings.Contains(all, m[1]) {
				t.Errorf("%s reads %s, which no doc mentions", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
