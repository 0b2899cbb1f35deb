package docker

import (
	"strings"
	"unicode/utf8"
)

// maxPullReason bounds the engine's pull error as shown in a step's error.
const maxPullReason = 300

// pullFailure is a failed pull as the step's author sees it: the engine's
// reason, cut (pullReason) so that what a registry answered is not copied
// into the run record. Unwrap gives the engine's error unchanged.
type pullFailure struct{ err error }

func (e *pullFailure) Error() string { return pullReason(e.err.Error()) }
func (e *pullFailure) Unwrap() error { return e.err }

// pullReason shortens an engine pull error to its first line, without the
// response body the engine quotes when a registry answers something it
// cannot parse ("error parsing HTTP 404 response body: invalid character
// 'I' ...: \"<body>\"" becomes "error parsing HTTP 404 response body (not
// shown)"), and to at most maxPullReason bytes. A server that is not a
// registry must not have its answers reflected to whoever named it.
func pullReason(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	msg = strings.TrimSpace(msg)
	if i := strings.Index(msg, "response body"); i >= 0 {
		msg = msg[:i+len("response body")] + " (not shown)"
	}
	return truncate(msg, maxPullReason)
}

// truncate cuts s to at most n bytes on a character boundary, marking the
// cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
