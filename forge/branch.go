package forge

import "strings"

// ValidBranchName reports whether name is a valid branch name under git's
// check-ref-format rules for refs/heads/<name>, plus kod's limits: 1-255
// bytes and no leading '-'. Kod API: 400 "Invalid branch name".
func ValidBranchName(name string) bool {
	if name == "" || len(name) > 255 || strings.HasPrefix(name, "-") || name == "@" {
		return false
	}
	if strings.Contains(name, "..") || strings.Contains(name, "@{") || strings.Contains(name, "//") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") || strings.HasPrefix(name, "/") {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	return true
}
