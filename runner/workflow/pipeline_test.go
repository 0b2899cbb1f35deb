package workflow

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
)

// steps3 is a valid tail of three steps a, b, c.
const steps3 = `
[[steps]]
name = "a"
run = "true"

[[steps]]
name = "b"
run = "true"

[[steps]]
name = "c"
run = "true"
`

// TestPipelineErrors: every rule of the pipeline keys fails with the file,
// the line of the offending key and a message saying what is wrong.
func TestPipelineErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		want string
	}{
		{"needs unknown", "[[steps]]\nname = \"a\"\nrun = \"x\"\n[[steps]]\nname = \"b\"\nrun = \"x\"\nneeds = [\"A\"]\n", 7, `step "b" needs "A", which is not a step of this workflow (did you mean "a"?)`},
		{"needs misspelt", "[[steps]]\nname = \"lint\"\nrun = \"x\"\n[[steps]]\nname = \"test\"\nrun = \"x\"\nneeds = [\"lnit\"]\n", 7, `step "test" needs "lnit", which is not a step of this workflow (did you mean "lint"?)`},
		{"needs far off", "[[steps]]\nname = \"lint\"\nrun = \"x\"\n[[steps]]\nname = \"test\"\nrun = \"x\"\nneeds = [\"deploy\"]\n", 7, `step "test" needs "deploy", which is not a step of this workflow; the steps are "lint", "test"`},
		{"needs self", "[[steps]]\nname = \"a\"\nneeds = [\"a\"]\nrun = \"x\"\n", 3, `step "a" needs itself`},
		{"needs twice", "[[steps]]\nname = \"a\"\nrun = \"x\"\n[[steps]]\nname = \"b\"\nneeds = [\"a\", \"a\"]\nrun = \"x\"\n", 6, `needs names "a" twice`},
		{"needs not array", "[[steps]]\nname = \"a\"\nneeds = \"b\"\nrun = \"x\"\n", 3, `needs must be an array of step names`},
		{"needs cycle", "[[steps]]\nname = \"a\"\nrun = \"x\"\nneeds = [\"c\"]\n[[steps]]\nname = \"b\"\nrun = \"x\"\nneeds = [\"a\"]\n[[steps]]\nname = \"c\"\nneeds = [\"b\"]\nrun = \"x\"\n", 4, `needs form a cycle: "a" needs "c", "c" needs "b", "b" needs "a"`},
		{"needs cycle through the implicit edge", "[[steps]]\nname = \"a\"\nrun = \"x\"\nneeds = [\"b\"]\n[[steps]]\nname = \"b\"\nrun = \"x\"\n", 4, `needs form a cycle: "a" needs "b", "b" (no needs) waits for "a", the step before it`},
		{"duplicate step name", "[[steps]]\nname = \"a\"\nrun = \"x\"\n[[steps]]\nname = \"a\"\nrun = \"y\"\n", 5, `duplicate step name "a" (first used at line 2)`},

		{"matrix empty axis", "[matrix]\nGO = [\"1\"]\nDB = []\n" + steps3, 3, "matrix axis DB is empty"},
		{"matrix too big", "[matrix]\nA = [1,2,3,4,5]\nB = [1,2,3,4,5]\nC = [1,2,3]\n" + steps3, 1, "the matrix has 75 combinations after excludes; a file may expand to at most 64"},
		{"matrix too big after excludes", "[matrix]\nA = [1,2,3,4,5,6,7,8,9]\nB = [1,2,3,4,5,6,7,8]\nexclude = [{A = 1, B = 1}]\n" + steps3, 1, "the matrix has 71 combinations after excludes"},
		{"matrix enormous", "[matrix]\nA = [1,2,3,4,5,6,7,8,9,10]\nB = [1,2,3,4,5,6,7,8,9,10]\nC = [1,2,3,4,5,6,7,8,9,10]\nD = [1,2,3,4,5,6,7,8,9,10]\n" + steps3, 1, "more than 4096 combinations"},
		{"matrix exclude unknown axis", "[matrix]\nGO = [\"1\", \"2\"]\nexclude = [{ GO = \"1\", OS = \"linux\" }]\n" + steps3, 3, `exclude names "OS", which is not a matrix axis; the axes are GO`},
		{"matrix exclude unknown value", "[matrix]\nGO = [\"1\", \"2\"]\nexclude = [{ GO = \"3\" }]\n" + steps3, 3, `exclude GO = "3": not a value of axis GO (1, 2)`},
		{"matrix exclude everything", "[matrix]\nGO = [\"1\"]\nexclude = [{ GO = \"1\" }]\n" + steps3, 3, "exclude leaves no combination"},
		{"matrix exclude empty table", "[matrix]\nGO = [\"1\", \"2\"]\nexclude = [{}]\n" + steps3, 3, "exclude has an empty table"},
		{"matrix axis name", "[matrix]\n\"GO-VERSION\" = [\"1\"]\n" + steps3, 2, `matrix axis "GO-VERSION": the name must be letters, digits and _`},
		{"matrix axis float", "[matrix]\nGO = [1.25]\n" + steps3, 2, "matrix axis GO: values must be strings or integers, found float 1.25 (quote it)"},
		{"matrix axis duplicate value", "[matrix]\nGO = [\"1\", 1]\n" + steps3, 2, `matrix axis GO has "1" twice`},
		{"matrix no axes", "[matrix]\nexclude = []\n" + steps3, 1, "matrix has no axes"},
		{"matrix not a table", "matrix = [\"a\"]\n" + steps3, 1, "matrix must be a table"},
		{"matrix placeholder unknown in name", "[matrix]\nGO = [\"1\"]\n[[steps]]\nname = \"test {matrix.OS}\"\nrun = \"x\"\n", 4, "step name: {matrix.OS}: no such matrix axis; the axes are GO"},
		{"matrix placeholder unknown in image", "[matrix]\nGO = [\"1\"]\n[[steps]]\nname = \"t\"\nimage = \"golang:{matrix.go}\"\nrun = \"x\"\n", 5, `step "t": image: {matrix.go}: no such matrix axis`},
		{"matrix placeholder without matrix", "image = \"golang:{matrix.GO}\"\n" + steps3, 1, "image: {matrix.GO}: the workflow has no [matrix] table"},
		{"matrix placeholder unclosed", "[matrix]\nGO = [\"1\"]\n[[steps]]\nname = \"test {matrix.GO\"\nrun = \"x\"\n", 4, "has an unclosed {matrix."},

		{"fail_fast not bool", "fail_fast = \"yes\"\n" + steps3, 1, "fail_fast must be true or false"},
		{"shell with options", "shell = \"bash -x\"\n" + steps3, 1, `shell "bash -x": a shell name or path without spaces`},
		{"shell empty", "[[steps]]\nname = \"a\"\nrun = \"x\"\nshell = \"\"\n", 4, "shell is empty"},
		{"shell relative path", "[[steps]]\nname = \"a\"\nrun = \"x\"\nshell = \"bin/bash\"\n", 4, `shell "bin/bash": write a name found on the PATH`},
		{"shell option", "shell = \"-c\"\n" + steps3, 1, "not an option"},
		{"shell control", "shell = \"ba\\u001bsh\"\n" + steps3, 1, "a shell name or path without spaces"},
		{"clone negative", "clone = { depth = -1 }\n" + steps3, 1, "clone.depth must be a whole number of commits from 0"},
		{"clone no depth", "[clone]\n" + steps3, 1, "clone has no depth"},
		{"clone unknown key", "[clone]\ndepth = 1\nshallow = true\n" + steps3, 3, `unknown key "shallow" in clone`},
		{"clone not table", "clone = 5\n" + steps3, 1, "clone must be a table"},

		{"service no name", "[[services]]\nimage = \"x\"\n" + steps3, 1, "service 1 has no name"},
		{"service bad name", "[[services]]\nname = \"DB_1\"\nimage = \"x\"\n" + steps3, 2, `service name "DB_1": steps reach the service by this hostname`},
		{"service no image", "[[services]]\nname = \"db\"\n" + steps3, 1, `service "db" has no image`},
		{"service duplicate", "[[services]]\nname = \"db\"\nimage = \"x\"\n[[services]]\nname = \"db\"\nimage = \"y\"\n" + steps3, 5, `duplicate service name "db" (first used at line 1)`},
		{"service unknown key", "[[services]]\nname = \"db\"\nimage = \"x\"\nports = [5432]\n" + steps3, 4, `unknown key "ports" in [[services]]`},
		{"service ready_timeout", "[[services]]\nname = \"db\"\nimage = \"x\"\nready_timeout = 3601\n" + steps3, 4, "ready_timeout must be a whole number of seconds from 1 to 3600"},
		{"service ready_timeout zero", "[[services]]\nname = \"db\"\nimage = \"x\"\nready_timeout = 0\n" + steps3, 4, "ready_timeout must be"},
		{"service secrets", "[[services]]\nname = \"db\"\nimage = \"x\"\nsecrets = [\"DB-PW\"]\n" + steps3, 4, `secrets: "DB-PW" is not a secret name`},
		{"service command empty", "[[services]]\nname = \"db\"\nimage = \"x\"\ncommand = []\n" + steps3, 4, "command must be a non-empty array of strings"},
		{"service command number", "[[services]]\nname = \"db\"\nimage = \"x\"\ncommand = [\"a\", 1]\n" + steps3, 4, "command must hold only strings"},
		{"service pull", "[[services]]\nname = \"db\"\nimage = \"x\"\npull = \"sometimes\"\n" + steps3, 4, `pull "sometimes" is not a pull policy`},
		{"service env", "[[services]]\nname = \"db\"\nimage = \"x\"\nenv = { \"A-B\" = \"1\" }\n" + steps3, 4, `env name "A-B" is not a valid variable name`},
		{"service image matrix", "[[services]]\nname = \"db\"\nimage = \"pg:{matrix.PG}\"\n" + steps3, 3, `service "db": image: {matrix.PG}: the workflow has no [matrix] table`},
		{"services without network", "network = \"none\"\n[[services]]\nname = \"db\"\nimage = \"x\"\n" + steps3, 1, "network = \"none\" leaves the steps no way to reach the services"},
		{"services not tables", "services = \"db\"\n" + steps3, 1, "services must be an array of tables ([[services]])"},

		{"cache no key", "[[caches]]\npath = \"node_modules\"\n" + steps3, 1, `cache "node_modules" has no key`},
		{"cache no path", "[[caches]]\nkey = \"k\"\n" + steps3, 1, "cache 1 has no path"},
		{"cache escapes", "[[caches]]\npath = \"../x\"\nkey = \"k\"\n" + steps3, 2, `cache path "../x" leaves the workspace`},
		{"cache workspace", "[[caches]]\npath = \"./\"\nkey = \"k\"\n" + steps3, 2, "is the workspace itself"},
		{"cache absolute workspace", "[[caches]]\npath = \"/workspace/\"\nkey = \"k\"\n" + steps3, 2, "is the workspace itself"},
		{"cache root", "[[caches]]\npath = \"/\"\nkey = \"k\"\n" + steps3, 2, "is the root of the container"},
		{"cache proc", "[[caches]]\npath = \"/proc/x\"\nkey = \"k\"\n" + steps3, 2, "which the kernel provides"},
		{"cache overlap", "[[caches]]\npath = \"/workspace/a\"\nkey = \"k\"\n[[caches]]\npath = \"a/b\"\nkey = \"k\"\n" + steps3, 5, `cache path "a/b" overlaps the cache at line 1`},
		{"cache key placeholder", "[[caches]]\npath = \"a\"\nkey = \"x-{commit}\"\n" + steps3, 3, "unknown placeholder {commit}; use {branch} or {hash:FILE[,FILE]}"},
		{"cache key unclosed", "[[caches]]\npath = \"a\"\nkey = \"x-{hash:go.sum\"\n" + steps3, 3, "has an unclosed {"},
		{"cache key hash escapes", "[[caches]]\npath = \"a\"\nkey = \"x-{hash:../go.sum}\"\n" + steps3, 3, `{hash:../go.sum}: file "../go.sum" is not a file inside the repository`},
		{"cache key hash empty", "[[caches]]\npath = \"a\"\nkey = \"x-{hash:}\"\n" + steps3, 3, "{hash:}: file name is empty"},
		{"cache key hash absolute", "[[caches]]\npath = \"a\"\nkey = \"{hash:/etc/passwd}\"\n" + steps3, 3, "must be relative to the repository root"},
		{"cache key bad char", "[[caches]]\npath = \"a\"\nkey = \"go cache\"\n" + steps3, 3, `" " is not allowed in a cache key`},
		{"cache key stray brace", "[[caches]]\npath = \"a\"\nkey = \"go}\"\n" + steps3, 3, "has a } without its {"},
		{"cache key empty", "[[caches]]\npath = \"a\"\nkey = \"\"\n" + steps3, 3, "cache key is empty"},
		{"cache unknown key", "[[caches]]\npath = \"a\"\nkey = \"k\"\nrestore_keys = []\n" + steps3, 4, `unknown key "restore_keys" in [[caches]]`},

		{"artifacts absolute", "[[steps]]\nname = \"a\"\nrun = \"x\"\nartifacts = [\"/etc/passwd\"]\n", 4, `artifacts: "/etc/passwd" must be relative to the workspace`},
		{"artifacts escape", "[[steps]]\nname = \"a\"\nrun = \"x\"\nartifacts = [\"dist/../../x\"]\n", 4, `artifacts: "dist/../../x" leaves the workspace`},
		{"artifacts bad glob", "[[steps]]\nname = \"a\"\nrun = \"x\"\nartifacts = [\"dist/[a\"]\n", 4, "is not a valid pattern"},
		{"artifacts whole workspace", "[[steps]]\nname = \"a\"\nrun = \"x\"\nartifacts = [\"./\"]\n", 4, "names the whole workspace"},
		{"artifacts not array", "[[steps]]\nname = \"a\"\nrun = \"x\"\nartifacts = \"dist\"\n", 4, "steps.artifacts must be an array of strings"},
		{"artifacts_when", "[[steps]]\nname = \"a\"\nrun = \"x\"\nartifacts_when = \"never\"\n", 4, `artifacts_when "never": use always, success, failure`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf, err := Parse(".kod/workflows/ci.toml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", wf)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.File != ".kod/workflows/ci.toml" || pe.Line != tt.line {
				t.Errorf("error at %s:%d, want line %d: %v", pe.File, pe.Line, tt.line, err)
			}
			if prefix := fmt.Sprintf(".kod/workflows/ci.toml:%d: ", tt.line); !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(pe.Msg, tt.want) {
				t.Errorf("message %q does not contain %q", pe.Msg, tt.want)
			}
		})
	}
}

func TestPipelineParse(t *testing.T) {
	src := `
fail_fast = true
shell = "bash"
clone = { depth = 10 }
matrix = { OS = ["linux", "darwin"], N = [1, 2] }

[[steps]]
name = "late"
needs = ["early"]
run = "x"

[[steps]]
name = "early"
needs = []
shell = "/bin/zsh"
artifacts = ["out/", "a/./b/*.log"]
artifacts_when = "success"
run = "y"
`
	wf, err := Parse("ci.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !wf.FailFast || wf.Shell != "bash" || wf.Clone == nil || wf.Clone.Depth != 10 {
		t.Errorf("workflow keys: %+v", wf)
	}
	// An inline matrix keeps the order written, too.
	if m := wf.Matrix; len(m.Axes) != 2 || m.Axes[0].Name != "OS" || !slices.Equal(m.Axes[1].Values, []string{"1", "2"}) {
		t.Errorf("matrix: %+v", wf.Matrix)
	}
	if got := len(wf.Matrix.Combinations()); got != 4 {
		t.Errorf("%d combinations, want 4", got)
	}
	late, early := wf.Steps[0], wf.Steps[1]
	if !late.NeedsSet || !slices.Equal(late.Needs, []string{"early"}) || !early.NeedsSet || len(early.Needs) != 0 {
		t.Errorf("needs: %+v / %+v", late, early)
	}
	if early.Shell != "/bin/zsh" || !slices.Equal(early.Artifacts, []string{"out/", "a/b/*.log"}) || early.ArtifactsWhen != "success" {
		t.Errorf("step keys: %+v", early)
	}
}

func TestMatrixCombinations(t *testing.T) {
	m := &Matrix{
		Axes:    []MatrixAxis{{Name: "GO", Values: []string{"1.25", "1.26"}}, {Name: "DB", Values: []string{"pg", "sqlite"}}},
		Exclude: []map[string]string{{"GO": "1.25", "DB": "sqlite"}},
	}
	var got []string
	for _, c := range m.Combinations() {
		got = append(got, c[0].Value+"/"+c[1].Value)
	}
	if want := []string{"1.25/pg", "1.26/pg", "1.26/sqlite"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := ExpandMatrix("go:{matrix.GO}-{matrix.DB}{x}", m.Combinations()[2]); got != "go:1.26-sqlite{x}" {
		t.Errorf("ExpandMatrix: %q", got)
	}
}

func TestParseCacheKey(t *testing.T) {
	parts, err := ParseCacheKey("go-{hash:go.sum, ./tools/go.sum}-{branch}.v2")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 5 || parts[0].Text != "go-" || !slices.Equal(parts[1].Hash, []string{"go.sum", "tools/go.sum"}) || !parts[3].Branch || parts[4].Text != ".v2" {
		t.Errorf("got %+v", parts)
	}
}

func TestWorkspacePath(t *testing.T) {
	if workspacePath != sandbox.WorkspacePath {
		t.Errorf("workspacePath %q, sandbox.WorkspacePath %q", workspacePath, sandbox.WorkspacePath)
	}
}
