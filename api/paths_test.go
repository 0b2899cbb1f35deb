package api_test

import (
	"os"
	"path/filepath"
	"testing"
)

// badNames are repository names that must never reach the disk.
var badNames = []string{"../x", "..", ".", "a/b", "a\\b", "%2e%2e", "x.git/hooks", "x.git", "-x", "--upload-pack=touch", ".hidden", "a b", "a\x00b", "ä"}

// TestPathTraversalCreatesNothing: escaping names are refused by create,
// import and rename, and escaping paths reach no repository; nothing
// appears on disk, inside or next to the repos dir.
func TestPathTraversalCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	A := bearer(admin)
	e.newRepo("ok", admin)
	src := sourceRepo(t, nil)
	parent := filepath.Dir(e.reposDir)
	before, _ := readDirNames(parent)
	var cases []refCase
	for _, bad := range badNames {
		cases = append(cases,
			refCase{name: "create " + bad, method: "POST", path: "/repos", auth: A, body: `{"name":` + jsonString(bad) + `}`, code: 400},
			refCase{name: "import " + bad, method: "POST", path: "/repos/import", auth: A, body: `{"source":` + jsonString(src) + `,"name":` + jsonString(bad) + `}`, code: 400},
		)
	}
	for _, p := range []string{"/repos/%2e%2e", "/repos/..%2fx", "/repos/x.git%2fhooks", "/repos/%2e%2e/collaborators", "/repos/-x", "/repos/ok.git/hooks/pre-receive", "/repos/..%2F..%2Fetc.git/info/refs?service=git-upload-pack"} {
		cases = append(cases, refCase{name: "GET " + p, method: "GET", path: p, auth: A, code: 404})
	}
	for _, p := range []string{"/repos/%2e%2e", "/repos/x.git%2fhooks"} {
		cases = append(cases, refCase{name: "DELETE " + p, method: "DELETE", path: p, auth: A, code: 404})
	}
	e.table(t, cases)
	assertOnlyEntries(t, e.reposDir, "ok.git")
	if after, _ := readDirNames(parent); len(after) != len(before) {
		t.Errorf("entries next to the repos dir changed: %v -> %v", before, after)
	}
	if _, err := os.Stat(filepath.Join(e.dir("ok"), "hooks", "pre-receive")); err != nil {
		t.Errorf("hooks of ok: %v", err)
	}
}
