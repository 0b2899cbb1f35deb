package workflow

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestHostileTOMLRefusedBeforeDecoding: the attack's files (thousands of
// nested inline tables, 16 KB and 1 MiB; keys of thousands of dotted parts;
// 300,000 array elements) are refused with the file, the line and
// the limit, before the decoder sees them: the refusal allocates next to
// nothing (the decoder took 1.6 GB and 37 s on the first).
func TestHostileTOMLRefusedBeforeDecoding(t *testing.T) {
	nested := func(depth int) string {
		return strings.Repeat("{a=", depth) + "1" + strings.Repeat("}", depth)
	}
	var big strings.Builder
	big.WriteString("[[steps]]\nname = \"a\"\nrun = \"true\"\n")
	for big.Len() < MaxFileSize-20000 {
		fmt.Fprintf(&big, "Y = %s\n", nested(4000))
	}
	cases := []struct {
		name, src, want string
	}{
		{"4,000 nested inline tables", "[[steps]]\nname = \"a\"\nrun = \"true\"\n\nY = " + nested(4000) + "\n",
			"x.toml:5: arrays and tables nest more than 8 levels deep here; a workflow file may nest at most 8"},
		{"1 MiB of nested inline tables", big.String(), "x.toml:4: arrays and tables nest more than 8 levels deep"},
		{"nested arrays", "Y = " + strings.Repeat("[", 300000) + strings.Repeat("]", 300000) + "\n", "x.toml:1: arrays and tables nest more than 8"},
		{"a key of 5,000 dotted parts", "[[steps]]\nname = \"a\"\nrun = \"true\"\n" + strings.Repeat("a.", 5000) + "b = 1\n",
			"x.toml:4: a key here has more than 8 dot-separated parts; a workflow file's keys may have at most 8"},
		{"a table header of 5,000 parts", "[" + strings.Repeat("a.", 5000) + "b]\n", "x.toml:1: a key here has more than 8 dot-separated parts"},
		{"300,000 array elements", "[[steps]]\nname = \"a\"\nrun = \"true\"\nx = [\n" + strings.Repeat("1,\n", 300000) + "]\n",
			"x.toml:9999: more than 10000 keys, tables and array elements by this line"}, // [[steps]] counts 2, each = and , one
	}
	for _, c := range cases {
		if len(c.src) > MaxFileSize {
			t.Fatalf("%s: %d bytes, more than the file limit", c.name, len(c.src))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Parse("x.toml", []byte(c.src))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %.300v\nwant %q", c.name, err, c.want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("%s: refusing it allocated %d MiB: it reached the decoder", c.name, alloc>>20)
		}
	}
}

// TestDepthScanIgnoresStringsAndComments: brackets, dots and commas inside
// strings (all four kinds, with escapes) and comments count for nothing, so
// ordinary scripts are never refused; nesting at the limit is fine.
func TestDepthScanIgnoresStringsAndComments(t *testing.T) {
	many := strings.Repeat("{[a.b.c,", 2000)
	src := `# ` + many + `
[[steps]]
name = "brackets in strings"
run = "echo '` + many + `' \" \\\" ` + many + `"
[[steps]]
name = "literal"
run = '` + many + `'
[[steps]]
name = "multi-line"
run = """
` + many + `
"" ` + many + ` \"""
"""
[[steps]]
name = "multi-line literal"
run = '''
` + many + `''''
[[steps]]
name = "at the limit"
run = "true"
env = { A = "1" }
[on]
push = ["main", "release/*"]
`
	wf, err := Parse("x.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(wf.Steps) != 5 || !strings.HasSuffix(wf.Steps[3].Run, ",'") || wf.Steps[4].Env[0].Value != "1" {
		t.Errorf("%d steps, the multi-line literal ends %q", len(wf.Steps), wf.Steps[3].Run[len(wf.Steps[3].Run)-5:])
	}
	deep := "x = " + strings.Repeat("[", MaxNesting) + strings.Repeat("]", MaxNesting) + "\n"
	if perr := checkDepth(deep); perr != nil {
		t.Errorf("nesting of exactly %d: %v", MaxNesting, perr)
	}
	if perr := checkDepth(strings.Repeat("a.", MaxKeyParts-1) + "b = 1\n"); perr != nil {
		t.Errorf("a key of exactly %d parts: %v", MaxKeyParts, perr)
	}
}
