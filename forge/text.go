package forge

import "unicode"

// HasControl reports whether s holds a control character: C0 (NUL, ESC, tab,
// newline...), DEL or C1 (U+0080-U+009F, where U+009B starts a terminal
// control sequence like ESC [). Names that reach terminals (token names in
// CLI tables, step names in `==> step` headers) must not carry them: an
// escape sequence in a name rewrites what the reader's terminal shows.
func HasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// HasHidden reports whether s holds a control character (HasControl) or a
// Unicode format character (category Cf: bidirectional overrides such as
// U+202E, zero-width spaces and joiners, the soft hyphen): the latter
// print nothing yet reorder or hide what a reader sees, so a name holding
// one can pass for another ("build" and "bu\u200bild").
func HasHidden(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}
