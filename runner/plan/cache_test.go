package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/kod-forge/kod/runner/workflow"
)

// TestCompileCacheKeyMissingFile: a cache key hashing a file the commit
// lacks fails the compile with the workflow file, the cache's line and the
// missing file named.
func TestCompileCacheKeyMissingFile(t *testing.T) {
	src := "[[caches]]\npath = \"node_modules\"\nkey = \"npm-{hash:package-lock.json,yarn.lock}\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n"
	wf, err := workflow.Parse(".kod/workflows/ci.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile([]*workflow.Workflow{wf}, testTrigger, testDefaults, Inputs{ReadFile: readTestRepo})
	var pe *workflow.ParseError
	if !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), "yarn.lock does not exist") || !strings.HasPrefix(err.Error(), ".kod/workflows/ci.toml:1: ") {
		t.Fatalf("got %v", err)
	}
	boom := errors.New("boom")
	_, err = Compile([]*workflow.Workflow{wf}, testTrigger, testDefaults, Inputs{ReadFile: func(string) ([]byte, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want it to wrap the reader's error", err)
	}
}
