package workflow

import (
	"errors"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// Invisible format characters (bidi overrides, zero-width) are refused
// like control characters in step names, matrix values and file names:
// "bu\u200bild" would pass for "build", and U+202E reorders what follows.
func TestHiddenCharactersRefused(t *testing.T) {
	for _, c := range []struct{ what, file, body, want string }{
		{"step name", Dir + "/ci.toml", "[[steps]]\nname = \"bu\u200bild\"\nrun = \"x\"\n", `step name "bu\u200bild" contains control or invisible format characters`},
		{"step name (bidi)", Dir + "/ci.toml", "[[steps]]\nname = \"test\u202egnp.exe\"\nrun = \"x\"\n", `step name "test\u202egnp.exe" contains control or invisible format characters`},
		{"matrix value", Dir + "/ci.toml", "[matrix]\nGO = [\"1.26\", \"1.2\u200d6\"]\n[[steps]]\nname = \"a\"\nrun = \"x\"\n", `value "1.2\u200d6" contains control or invisible format characters`},
		{"file name", Dir + "/c\u202ei.toml", "[[steps]]\nname = \"a\"\nrun = \"x\"\n", `"` + Dir + `/c\u202ei.toml": the file name contains control or invisible format characters`},
	} {
		_, err := Parse(c.file, []byte(c.body))
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a parse error with %s", c.what, err, c.want)
			continue
		}
		if forge.HasHidden(err.Error()) {
			t.Errorf("%s: the error %q carries the character itself", c.what, err)
		}
	}
}

func TestHasHidden(t *testing.T) {
	for s, want := range map[string]bool{"build": false, "déploiement ✓": false, "a\tb": true, "\x1b[2J": true, "a\u200bb": true, "\u202eabc": true, "a\u00adb": true, "\u2066x\u2069": true} {
		if got := forge.HasHidden(s); got != want {
			t.Errorf("HasHidden(%q) = %v, want %v", s, got, want)
		}
	}
}
