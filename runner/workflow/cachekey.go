package workflow

import (
	"fmt"
	"path"
	"strings"
)

// KeyPart is one piece of a cache key: literal text, {branch}, or
// {hash:FILE[,FILE...]}.
type KeyPart struct {
	Text   string   // literal text; "" for a placeholder
	Branch bool     // {branch}: the run's branch name
	Hash   []string // {hash:...}: repository-relative files, cleaned, in the order written
}

// MaxCacheKey is the longest cache key a file may write, bytes.
const MaxCacheKey = 200

// ParseCacheKey splits a cache key into literal text and placeholders:
// {branch} and {hash:FILE[,FILE...]} (files relative to the repository
// root, separated by commas, spaces around them ignored). Literal text is
// letters, digits and . _ - (the key names storage); any other {...} is an
// error, so a typo never becomes part of a key.
func ParseCacheKey(key string) ([]KeyPart, error) {
	if strings.TrimSpace(key) == "" {
		return nil, fmt.Errorf("is empty")
	}
	if len(key) > MaxCacheKey {
		return nil, fmt.Errorf("is %d bytes; at most %d", len(key), MaxCacheKey)
	}
	var parts []KeyPart
	for s := key; s != ""; {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			open = len(s)
		}
		if lit := s[:open]; lit != "" {
			if i := strings.IndexFunc(lit, func(r rune) bool { return !keyChar(r) }); i >= 0 {
				if lit[i] == '}' {
					return nil, fmt.Errorf("%q has a } without its {", clip(key))
				}
				return nil, fmt.Errorf("%q: %q is not allowed in a cache key; use letters, digits, '.', '_', '-' and the placeholders {branch} and {hash:FILE}", clip(key), lit[i:i+1])
			}
			parts = append(parts, KeyPart{Text: lit})
		}
		if open == len(s) {
			break
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q has an unclosed {", clip(key))
		}
		inner := s[open+1 : open+end]
		s = s[open+end+1:]
		switch {
		case inner == "branch":
			parts = append(parts, KeyPart{Branch: true})
		case strings.HasPrefix(inner, "hash:"):
			var files []string
			for f := range strings.SplitSeq(inner[len("hash:"):], ",") {
				f = strings.TrimSpace(f)
				clean, err := cleanRepoPath(f)
				if err != nil {
					return nil, fmt.Errorf("{%s}: file %v", inner, err)
				}
				files = append(files, clean)
			}
			parts = append(parts, KeyPart{Hash: files})
		default:
			return nil, fmt.Errorf("%q: unknown placeholder {%s}; use {branch} or {hash:FILE[,FILE]}", clip(key), clip(inner))
		}
	}
	return parts, nil
}

func keyChar(r rune) bool {
	return r == '.' || r == '_' || r == '-' || r < 128 && isAlnum(byte(r))
}

// cleanRepoPath checks a path relative to the repository root (a file
// {hash:...} reads) and returns it cleaned.
func cleanRepoPath(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("name is empty")
	case strings.ContainsRune(p, '\\'):
		return "", fmt.Errorf("%q: use forward slashes", clip(p))
	case path.IsAbs(p):
		return "", fmt.Errorf("%q must be relative to the repository root", clip(p))
	}
	clean := path.Clean(p)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q is not a file inside the repository", clip(p))
	}
	return clean, nil
}
