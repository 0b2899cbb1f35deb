package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	testTrigger  = Trigger{RunID: "r1", Repo: "proj", Branch: "feature/x", Commit: "0123456789abcdef0123456789abcdef01234567", Event: "push", Secrets: []string{"TOKEN"}}
	testDefaults = Defaults{
		Image:  "kod/busybox:local",
		Pull:   sandbox.PullIfNotPresent,
		Limits: sandbox.Limits{MemoryBytes: 512 << 20, NanoCPUs: 1_500_000_000, PIDs: 256},
	}
	// testRepo is the commit's files the cache keys of testdata hash.
	testRepo = map[string]string{"go.sum": "module sums\n", "package-lock.json": "{}\n"}
)

func readTestRepo(name string) ([]byte, error) {
	if s, ok := testRepo[name]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
}

// parseFiles parses input files of testdata; a case is one file, or several
// named NAME.N.toml (compiled together in N order).
func parseFiles(t *testing.T, paths ...string) []*workflow.Workflow {
	t.Helper()
	var wfs []*workflow.Workflow
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		wf, err := workflow.Parse(workflow.Dir+"/"+filepath.Base(p), data)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		wfs = append(wfs, wf)
	}
	return wfs
}

// TestCompileGolden compiles each testdata/*.toml and compares the plan,
// as indented JSON, with its .golden file (go test -update rewrites them).
func TestCompileGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			p, err := Compile(parseFiles(t, in), testTrigger, testDefaults, Inputs{ReadFile: readTestRepo})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			checkPlan(t, p)
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(p); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(in, ".toml")+".golden", out.Bytes())
		})
	}
}

// checkPlan checks the invariants every plan keeps, whatever the input.
func checkPlan(t *testing.T, p *Plan) {
	t.Helper()
	for i, s := range p.Steps() {
		if s.Index != i {
			t.Errorf("Steps()[%d] has Index %d", i, s.Index)
		}
	}
	keys, ids := map[string]bool{}, map[string]bool{}
	idx := 0
	for _, wf := range p.Workflows {
		if keys[wf.Key] || len(wf.Key) > maxKey || wf.Key != slug(wf.Key) {
			t.Errorf("bad or duplicate key %q", wf.Key)
		}
		keys[wf.Key] = true
		for _, s := range wf.Steps {
			if s.Index != idx {
				t.Errorf("step %s: Index %d, want %d", s.ID, s.Index, idx)
			}
			idx++
			if ids[s.ID] || !strings.HasPrefix(s.ID, wf.Key+".") || s.Workflow != wf {
				t.Errorf("bad or duplicate step id %q", s.ID)
			}
			ids[s.ID] = true
			for _, n := range s.Needs {
				if !strings.HasPrefix(n, wf.Key+".") {
					t.Errorf("step %s needs %s of another workflow", s.ID, n)
				}
			}
		}
	}
	for _, wf := range p.Workflows {
		for _, s := range wf.Steps {
			for _, n := range s.Needs {
				if !ids[n] {
					t.Errorf("step %s needs unknown %s", s.ID, n)
				}
			}
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestCompileFileOrder: several files give their instances in file order,
// with step indexes running on across them and keys kept unique.
func TestCompileFileOrder(t *testing.T) {
	a, err := workflow.Parse(".kod/workflows/ci.toml", []byte("[[steps]]\nname = \"a\"\nrun = \"true\"\n[[steps]]\nname = \"b\"\nrun = \"true\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := workflow.Parse("other/ci.toml", []byte("[step:x]\nrun: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile([]*workflow.Workflow{a, b}, testTrigger, Defaults{Image: "img"}, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, p)
	var got []string
	for _, wf := range p.Workflows {
		for _, s := range wf.Steps {
			got = append(got, fmt.Sprintf("%d:%s", s.Index, s.ID))
		}
	}
	if want := "0:ci.a 1:ci.b 2:ci-2.x"; strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
	if env := p.Workflows[0].Steps[0].Env; len(env) != 0 {
		t.Errorf("no CPU limit: env %v, want none", env)
	}
}

func TestKeys(t *testing.T) {
	c := &compiler{keys: map[string]bool{}}
	long := []workflow.EnvVar{{Name: "PYTHON_VERSION", Value: "3.12.1"}, {Name: "DATABASE", Value: "postgresql-16"}}
	tests := []struct {
		file string
		m    []workflow.EnvVar
		want string
	}{
		{".kod/workflows/ci.toml", nil, "ci"},
		{".kod/workflows/ci.toml", []workflow.EnvVar{{Name: "GO", Value: "1.26"}, {Name: "DB", Value: "pg"}}, "ci-go-1-26-db-pg"},
		{".kod/workflows/CI.toml", nil, "ci-2"},
		{".kod/workflows/__.toml", nil, "workflow"},
		{".kod/workflows/integration.toml", long, "integration-python-version-3-12-49b74525"},
	}
	for _, tt := range tests {
		got := c.key(tt.file, tt.m)
		if got != tt.want || len(got) > maxKey {
			t.Errorf("key(%s, %v) = %q, want %q", tt.file, tt.m, got, tt.want)
		}
	}
	if got := c.key(".kod/workflows/integration.toml", long); got != "integration-python-version-3-12-49b745-2" {
		t.Errorf("a second long key: %q", got)
	}
}

// TestCompileMatrixNeeds: a needs name is a step name as written, matrix
// placeholders included, and means that step of the same instance.
func TestCompileMatrixNeeds(t *testing.T) {
	wf, err := workflow.Parse(".kod/workflows/ci.toml", []byte("[matrix]\nOS = [\"a\", \"b\"]\n[[steps]]\nname = \"build {matrix.OS}\"\nrun = \"true\"\n[[steps]]\nname = \"lint\"\nrun = \"true\"\n[[steps]]\nname = \"test {matrix.OS}\"\nneeds = [\"build {matrix.OS}\"]\nrun = \"true\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile([]*workflow.Workflow{wf}, testTrigger, Defaults{Image: "img"}, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, p)
	for i, os := range []string{"a", "b"} {
		steps := p.Workflows[i].Steps
		if steps[2].Name != "test "+os || len(steps[2].Needs) != 1 || steps[2].Needs[0] != steps[0].ID || steps[0].Name != "build "+os {
			t.Errorf("instance %s: %s needs %v, want [%s (%s)]", os, steps[2].Name, steps[2].Needs, steps[0].ID, steps[0].Name)
		}
	}
	if _, err := workflow.Parse("ci.toml", []byte("[matrix]\nOS = [\"a\"]\n[[steps]]\nname = \"build {matrix.OS}\"\nrun = \"true\"\n[[steps]]\nname = \"t\"\nneeds = [\"build a\"]\nrun = \"true\"\n")); err == nil {
		t.Error("needs naming an expanded name parsed")
	}
}

// TestCompileStepLimit: a matrix multiplies steps; beyond Defaults.MaxSteps
// the compile fails, naming the count.
func TestCompileStepLimit(t *testing.T) {
	wfs := parseFiles(t, "testdata/matrix.toml") // 3 instances of 2 steps
	d := testDefaults
	d.MaxSteps = 5
	_, err := Compile(wfs, testTrigger, d, Inputs{})
	var le *StepLimitError
	if !errors.As(err, &le) || !errors.Is(err, forge.ErrInvalid) || le.Steps != 6 || le.Instances != 3 {
		t.Fatalf("got %v", err)
	}
	d.MaxSteps = 6
	if _, err := Compile(wfs, testTrigger, d, Inputs{}); err != nil {
		t.Fatal(err)
	}
}

// FuzzCompile: whatever Parse accepts compiles into a plan that keeps the
// invariants (unique keys and ids, indexes in order, needs inside their
// workflow), without panicking.
func FuzzCompile(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*.toml")
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := workflow.Parse(".kod/workflows/f.toml", data)
		if err != nil {
			return
		}
		p, err := Compile([]*workflow.Workflow{wf, wf}, testTrigger, testDefaults, Inputs{ReadFile: readTestRepo})
		if err != nil {
			var pe *workflow.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Compile: %v", err)
			}
			return
		}
		checkPlan(t, p)
	})
}
