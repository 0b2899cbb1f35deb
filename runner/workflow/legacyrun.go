package workflow

import "strings"

// run reads the run key of the current step on line i (0-based) and returns
// the index of the last line it consumed. A value on the same line is a
// one-line script; an empty value, or only a comment, starts a block: the
// lines after it that are more indented than the key, and blank lines between
// them, dedented by their common indentation. The block ends at the first
// non-blank line that is not more indented, except that a # comment line at
// that level is skipped and the block goes on.
//
// Script text is kept as written, comments included: `sh` already ignores a
// `#` that starts a word outside quotes, which is the same rule as the
// inline-comment rule of the other keys, and only the shell gets it right in
// every corner (`echo "a # b"`, `echo a#b`, `${x#y}`, heredocs). The one
// exception is an `env.NAME = value` directive line, which the parser reads
// itself and whose ` # comment` it removes (see directive).
func (p *legacyParser) run(i int, raw string) (int, *ParseError) {
	n := i + 1
	if v := strings.TrimSpace(raw); v != "" && v[0] != '#' {
		if u, ok := unquote(v); ok {
			v = u
		}
		if strings.TrimSpace(v) == "" {
			return i, errAt(n, "run is empty")
		}
		return i, p.setRun([]string{v}, []int{n})
	}
	keyIndent := indentWidth(p.lines[i])
	var body []string
	var nums []int
	j := i + 1
block:
	for ; j < len(p.lines); j++ {
		line := p.lines[j]
		t := strings.TrimSpace(line)
		switch {
		case t == "":
			body, nums = append(body, ""), append(nums, j+1)
		case indentWidth(line) > keyIndent:
			body, nums = append(body, line), append(nums, j+1)
		case t[0] == '#':
			// A comment at the key's level neither ends nor joins the block.
		default:
			break block
		}
	}
	for len(body) > 0 && body[len(body)-1] == "" {
		body, nums = body[:len(body)-1], nums[:len(nums)-1]
	}
	for len(body) > 0 && body[0] == "" {
		body, nums = body[1:], nums[1:]
	}
	if len(body) == 0 {
		return j - 1, errAt(n, "run: has no script; indent the script lines under run: or write the command after it")
	}
	return j - 1, p.setRun(dedent(body), nums)
}

// setRun stores the script of the current step, turning each env directive
// into an export line and recording it in Exports. nums are the lines' numbers.
func (p *legacyParser) setRun(lines []string, nums []int) *ParseError {
	var exports []EnvVar
	for k, line := range lines {
		indent, name, value, ok := directive(line)
		if !ok {
			continue
		}
		if !validEnvName(name) {
			return errAt(nums[k], "env.%s: %q is not a valid variable name (letters, digits and _, not starting with a digit)", name, name)
		}
		exports = append(exports, EnvVar{Name: name, Value: value})
		lines[k] = indent + exportLine(name, value)
	}
	p.step.Run = strings.Join(lines, "\n")
	p.step.Exports = exports
	return nil
}

// directive recognises a script line `env.NAME = value` (spaces optional):
// Kod's way to set a variable for the rest of the step and the later steps.
// The value loses a trailing ` # comment` and, when it is one quoted string,
// its quotes; otherwise it is the trimmed text. `env.NAME == x` is not one.
func directive(line string) (indent, name, value string, ok bool) {
	t := strings.TrimLeft(line, " \t")
	rest, found := strings.CutPrefix(t, "env.")
	if !found {
		return "", "", "", false
	}
	end := strings.IndexAny(rest, "= \t")
	if end <= 0 {
		return "", "", "", false
	}
	name = rest[:end]
	after, found := strings.CutPrefix(strings.TrimLeft(rest[end:], " \t"), "=")
	if !found || strings.HasPrefix(after, "=") {
		return "", "", "", false
	}
	value = strings.TrimSpace(stripComment(after))
	if u, q := unquote(value); q {
		value = u
	}
	return line[:len(line)-len(t)], name, value, true
}

// indentWidth counts the leading spaces and tabs of a line (a tab counts as
// one, so mixing them is read literally rather than guessed).
func indentWidth(line string) int {
	return len(line) - len(strings.TrimLeft(line, " \t"))
}

// dedent removes the leading whitespace common to all non-blank lines.
func dedent(lines []string) []string {
	prefix := ""
	first := true
	for _, l := range lines {
		if l == "" {
			continue
		}
		ws := l[:indentWidth(l)]
		if first {
			prefix, first = ws, false
			continue
		}
		for !strings.HasPrefix(ws, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue // blank lines inside the block become empty lines
		}
		out[i] = strings.TrimPrefix(l, prefix)
	}
	return out
}
