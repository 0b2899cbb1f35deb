package workflow

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is a
// *ParseError, and that an accepted file satisfies the plan's invariants.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join(testdataDir, dir, "*.toml"))
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("[step:a]\nrun:\n\t env.X = '{env.X}' # c\n  \"\"\"\n"))
	f.Add([]byte("steps = [{name='a', run='b', env={A=1}}]\n[on]\npush=[]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := Parse("f.toml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		if len(wf.Steps) == 0 {
			t.Fatal("accepted a workflow without steps")
		}
		if wf.Timeout <= 0 {
			t.Fatalf("timeout %v", wf.Timeout)
		}
		for _, s := range wf.Steps {
			if strings.TrimSpace(s.Name) == "" || strings.TrimSpace(s.Run) == "" {
				t.Fatalf("step with empty name or run: %+v", s)
			}
			if s.Line <= 0 {
				t.Fatalf("step %q without a line", s.Name)
			}
			if d := s.WorkingDir; strings.HasPrefix(d, "/") || d == ".." || strings.HasPrefix(d, "../") {
				t.Fatalf("working_dir %q escapes", d)
			}
			if s.Interpolate != (wf.Format == FormatLegacy) {
				t.Fatalf("Interpolate %v for format %s", s.Interpolate, wf.Format)
			}
			vars := Vars{Branch: "main", Repo: "r", Env: map[string]string{"X": "'\n"}}
			s.Script(vars)
			if got := s.ExportValues(vars); len(got) != len(s.Exports) {
				t.Fatalf("ExportValues gave %d of %d", len(got), len(s.Exports))
			}
		}
	})
}
