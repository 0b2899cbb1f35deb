package workflow

import (
	"fmt"
	"strconv"
	"time"

	"github.com/kod-forge/kod/forge"
)

// MaxFileSize is the largest workflow file Parse accepts, in bytes. A
// workflow is a short text file; the limit keeps a hostile push from making
// the server parse megabytes.
const MaxFileSize = 1 << 20

// MaxTimeout is the largest timeout a workflow or a step may ask for.
const MaxTimeout = 24 * time.Hour

// ParseError is the error Parse returns for a file it rejects: a syntax error,
// an unknown key, or a value that breaks a rule. Line is 1-based; 0 means the
// error concerns the whole file (Error then omits it). Msg is meant for the
// user who wrote the file. It wraps forge.ErrInvalid so transports map it to
// a 400 without matching text.
type ParseError struct {
	File string // repository-relative path, as given to Parse
	Line int    // 1-based line, 0 if none applies
	Msg  string
}

// Error formats the error as "<file>:<line>: <msg>", or "<file>: <msg>" when
// Line is 0, the shape compilers use so editors can jump to the line.
//
// A file name with control characters (a newline, ESC, BEL: a pusher names
// files) is quoted, so the error cannot forge lines or terminal sequences in
// a push's output, a run record or `kod workflow show`.
func (e *ParseError) Error() string {
	file := e.File
	if forge.HasHidden(file) {
		file = strconv.Quote(file)
	}
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", file, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
}

// Unwrap returns forge.ErrInvalid: every parse error is the user's input.
func (e *ParseError) Unwrap() error { return forge.ErrInvalid }

// errAt builds a *ParseError without its File; Parse fills that in.
func errAt(line int, format string, args ...any) *ParseError {
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}
