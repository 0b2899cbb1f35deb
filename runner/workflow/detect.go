package workflow

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kod-forge/kod/forge"
)

// Parse parses one workflow file. file is its repository-relative path (kept
// in Workflow.File and used in messages), data its bytes (at most
// MaxFileSize; a UTF-8 byte order mark is ignored).
//
// The format is detected (see DetectFormat): Kod's line syntax or TOML. On
// failure Parse returns a *ParseError naming file and the 1-based line of the
// problem; it never returns a workflow without steps.
//
// A file name holding control characters is refused (its File is then
// quoted, so the error itself is safe to print), and messages are kept
// under maxMsgLen bytes, however long the value they quote.
func Parse(file string, data []byte) (*Workflow, error) {
	return Options{}.Parse(file, data)
}

// Options tune parsing. The zero value is what users get.
type Options struct {
	// MinScheduleInterval is the shortest interval between two firings a
	// schedule may ask for; 0 means MinScheduleInterval (one minute).
	MinScheduleInterval time.Duration
}

func (o Options) minScheduleInterval() time.Duration {
	if o.MinScheduleInterval <= 0 {
		return MinScheduleInterval
	}
	return o.MinScheduleInterval
}

// Parse is the package's Parse with o.
func (o Options) Parse(file string, data []byte) (*Workflow, error) {
	if forge.HasHidden(file) {
		return nil, &ParseError{File: strconv.Quote(file), Msg: "the file name contains control or invisible format characters (such as tab, newline, ESC, a zero-width space or a bidirectional override); rename the file"}
	}
	wf, perr := parse(data, o)
	if perr != nil {
		perr.File = file
		perr.Msg = clipMsg(perr.Msg)
		return nil, perr
	}
	wf.File = file
	return wf, nil
}

// maxMsgLen caps a parse error's message, bytes: messages quote values from
// the file, and run records and push output carry them.
const maxMsgLen = 512

// clipMsg cuts msg to maxMsgLen bytes on a rune boundary.
func clipMsg(msg string) string {
	if len(msg) <= maxMsgLen {
		return msg
	}
	cut := maxMsgLen - 3
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}

func parse(data []byte, o Options) (*Workflow, *ParseError) {
	if len(data) > MaxFileSize {
		return nil, errAt(0, "file is %d bytes; a workflow file may be at most %d", len(data), MaxFileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if perr := checkText(data); perr != nil {
		return nil, perr
	}
	src := string(data)
	if DetectFormat(data) == FormatLegacy {
		return parseLegacy(src)
	}
	if perr := checkDepth(src); perr != nil {
		return nil, perr
	}
	return parseTOML(src, o)
}

// checkText refuses binary content: invalid UTF-8 or a NUL byte, reported at
// the line where it first occurs.
func checkText(data []byte) *ParseError {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == 0 || (r == utf8.RuneError && size == 1) {
			line := 1 + bytes.Count(data[:i], []byte("\n"))
			return errAt(line, "not a text file: invalid UTF-8 or NUL byte at offset %d", i)
		}
		i += size
	}
	return nil
}

// DetectFormat tells which syntax a workflow file uses. It is Kod's line
// syntax when a line outside TOML multi-line strings starts a `[step:`
// section or is a `key: value` line (an identifier followed by a colon, such
// as `timeout: 120`), neither of which is valid TOML; otherwise it is TOML.
// Comment lines are ignored.
func DetectFormat(data []byte) Format {
	var open string // the delimiter of an unclosed TOML multi-line string
	for line := range strings.Lines(string(data)) {
		if open != "" {
			end := strings.Index(line, open)
			if end < 0 {
				continue
			}
			open = openMultiline(line[end+3:])
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.HasPrefix(t, "[step:") || isLegacyKeyLine(t) {
			return FormatLegacy
		}
		open = openMultiline(line)
	}
	return FormatTOML
}

// isLegacyKeyLine reports whether t starts with `identifier:`.
func isLegacyKeyLine(t string) bool {
	key, _, ok := strings.Cut(t, ":")
	return ok && isKey(strings.TrimRight(key, " \t"))
}

// openMultiline returns the delimiter (three double or three single quotes)
// when line leaves a TOML multi-line string open, else "". Good enough for
// detection: single-line strings holding a triple quote are not considered.
func openMultiline(line string) string {
	for {
		dq, sq := strings.Index(line, `"""`), strings.Index(line, `'''`)
		start, delim := dq, `"""`
		if sq >= 0 && (dq < 0 || sq < dq) {
			start, delim = sq, `'''`
		}
		if start < 0 {
			return ""
		}
		line = line[start+3:]
		end := strings.Index(line, delim)
		if end < 0 {
			return delim
		}
		line = line[end+3:]
	}
}
