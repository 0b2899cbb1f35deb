package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/workflows")

const testdataDir = "../../testdata/workflows"

func inputs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdataDir, dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs in %s/%s: %v", testdataDir, dir, err)
	}
	return files
}

// golden compares got with the golden file, or rewrites it under -update.
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
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func workflowPath(input string) string { return Dir + "/" + filepath.Base(input) }

func TestParseValid(t *testing.T) {
	for _, in := range inputs(t, "valid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			wf, err := Parse(workflowPath(in), data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			wantFormat := FormatTOML
			if strings.HasPrefix(filepath.Base(in), "legacy-") {
				wantFormat = FormatLegacy
			}
			if wf.Format != wantFormat {
				t.Errorf("Format = %q, want %q", wf.Format, wantFormat)
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false) // keep `<<EOF` readable in the golden files
			enc.SetIndent("", "  ")
			if err := enc.Encode(wf); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(in, ".toml")+".golden.json", out.Bytes())
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range inputs(t, "invalid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			wf, err := Parse(workflowPath(in), data)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", wf)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Line <= 0 || pe.File != workflowPath(in) {
				t.Errorf("error names %s line %d, want %s and a line: %v", pe.File, pe.Line, workflowPath(in), err)
			}
			if !errors.Is(err, forge.ErrInvalid) {
				t.Errorf("error does not wrap forge.ErrInvalid")
			}
			golden(t, strings.TrimSuffix(in, ".toml")+".golden.txt", []byte(err.Error()+"\n"))
		})
	}
}

func TestParseDetails(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, wf *Workflow)
	}{
		{"legacy CRLF and BOM", "\xef\xbb\xbftimeout: 30\r\n[step:a]\r\nrun:\r\n  echo 1\r\n  echo 2\r\n", func(t *testing.T, wf *Workflow) {
			if wf.Format != FormatLegacy || wf.Timeout != 30*time.Second || wf.Steps[0].Run != "echo 1\necho 2" {
				t.Errorf("got %+v", wf)
			}
		}},
		{"toml CRLF", "timeout = 30\r\n[[steps]]\r\nname = \"a\"\r\nrun = \"x\"\r\n", func(t *testing.T, wf *Workflow) {
			if wf.Format != FormatTOML || wf.Steps[0].Line != 2 {
				t.Errorf("got %+v", wf)
			}
		}},
		{"default timeout", "[[steps]]\nname = \"a\"\nrun = \"x\"\n", func(t *testing.T, wf *Workflow) {
			if wf.Timeout != DefaultTimeout || wf.Steps[0].Interpolate || wf.On.Set {
				t.Errorf("got %+v", wf)
			}
		}},
		{"legacy block ends at dedent", "[step:a]\nrun:\n  one\n\n  two\n\ncontinue_on_error: false\n", func(t *testing.T, wf *Workflow) {
			if s := wf.Steps[0]; s.Run != "one\n\ntwo" || s.ContinueOnError {
				t.Errorf("got %+v", s)
			}
		}},
		{"legacy run: with comment starts a block", "[step:a]\nrun: # the script\n    make\n", func(t *testing.T, wf *Workflow) {
			if wf.Steps[0].Run != "make" {
				t.Errorf("got %q", wf.Steps[0].Run)
			}
		}},
		{"legacy header with comment", "[step:Build] # see [docs]\nrun: make\n[step:a]b]\nrun: x\n", func(t *testing.T, wf *Workflow) {
			if wf.Steps[0].Name != "Build" || wf.Steps[1].Name != "a]b" {
				t.Errorf("got %q, %q", wf.Steps[0].Name, wf.Steps[1].Name)
			}
		}},
		{"legacy keeps duplicate step names", "[step:a]\nrun: x\n[step:a]\nrun: y\n", func(t *testing.T, wf *Workflow) {
			if len(wf.Steps) != 2 {
				t.Errorf("got %d steps", len(wf.Steps))
			}
		}},
		{"legacy multi-line run keeps mixed indentation", "[step:a]\nrun:\n    if true; then\n      echo in\n    fi\n", func(t *testing.T, wf *Workflow) {
			if wf.Steps[0].Run != "if true; then\n  echo in\nfi" {
				t.Errorf("got %q", wf.Steps[0].Run)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf, err := Parse("ci.toml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, wf)
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	tests := []struct {
		err  ParseError
		want string
	}{
		{ParseError{File: "a.toml", Line: 3, Msg: "bad"}, "a.toml:3: bad"},
		{ParseError{File: "a.toml", Msg: "too big"}, "a.toml: too big"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	big := make([]byte, MaxFileSize+1)
	if _, err := Parse("big.toml", big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		src  string
		want Format
	}{
		{"", FormatTOML},
		{"# timeout: 5\n[[steps]]\n", FormatTOML},
		{"timeout: 5\n", FormatLegacy},
		{"  [step:x]\n", FormatLegacy},
		{"x = '''\nkey: value\n'''\n", FormatTOML},
		{"x = \"\"\"one\"\"\" # then\nkey: value\n", FormatLegacy},
		{"run = \"a: b\"\n", FormatTOML},
		{"[steps]\n", FormatTOML},
	}
	for _, tt := range tests {
		if got := DetectFormat([]byte(tt.src)); got != tt.want {
			t.Errorf("DetectFormat(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}
