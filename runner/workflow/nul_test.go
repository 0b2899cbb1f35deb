package workflow

import (
	"strings"
	"testing"
)

// TestNULRefused: a NUL in a step's script or in an env value (which no
// process argument or environment can carry) is a parse error with its line,
// not a container runtime's message at run time.
func TestNULRefused(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		"run":      {"[[steps]]\nname = \"a\"\nrun = \"echo a\\u0000b\"\n", `ci.toml:3: step "a": run must not contain a NUL character`},
		"step env": {"[[steps]]\nname = \"a\"\nrun = \"true\"\nenv = { X = \"a\\u0000\" }\n", `ci.toml:4: env X must not contain a NUL character`},
		"top env":  {"[env]\nY = \"\\u0000\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n", `ci.toml:2: env Y must not contain a NUL character`},
	} {
		_, err := Parse(".kod/workflows/ci.toml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}
