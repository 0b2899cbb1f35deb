package workflow

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kod's line syntax (KOD-REFERENCE "Workflows"):
//
//	# comment
//	timeout: 120              workflow timeout in seconds, before the first step
//	[step:Install deps]       starts a step; the name may contain spaces
//	run: npm ci               one-line script
//	[step:Test]
//	if: branch == 'main'
//	working_dir: app
//	continue_on_error: true
//	run:                      empty value: the more-indented lines below are the script
//	  env.VERSION = "1.{env.BUILD}"
//	  echo "$VERSION on {branch}"
//
// Step keys are run, if, working_dir, continue_on_error and, as a deliberate
// extension, image and timeout. A value is true/false, an integer, a quoted
// string ("..." or '...', quotes removed, no escapes) or else the trimmed
// text. ` # comment` after a value is removed (deliberate improvement) unless
// the # is inside quotes or not preceded by a space or tab; run text is
// treated differently, see runBlock.

var legacyStepKeys = []string{"run", "if", "working_dir", "continue_on_error", "image", "timeout"}

type legacyParser struct {
	lines []string
	wf    *Workflow
	step  *Step          // the step being read, nil before the first [step:]
	seen  map[string]int // keys already set in the current section -> line
}

// parseLegacy parses Kod's line syntax.
func parseLegacy(src string) (*Workflow, *ParseError) {
	p := &legacyParser{
		lines: strings.Split(src, "\n"),
		wf:    &Workflow{Format: FormatLegacy, Timeout: DefaultTimeout},
		seen:  map[string]int{},
	}
	for i := range p.lines {
		p.lines[i] = strings.TrimSuffix(p.lines[i], "\r")
	}
	for i := 0; i < len(p.lines); i++ {
		next, perr := p.line(i)
		if perr != nil {
			return nil, perr
		}
		i = next
	}
	if perr := p.endStep(); perr != nil {
		return nil, perr
	}
	if len(p.wf.Steps) == 0 {
		return nil, errAt(1, "no steps: add at least one [step:NAME] section with a run: key")
	}
	return p.wf, nil
}

// line handles line i (0-based) and returns the index of the last line it
// consumed (a run block consumes the lines after it).
func (p *legacyParser) line(i int) (int, *ParseError) {
	n := i + 1
	t := strings.TrimSpace(p.lines[i])
	switch {
	case t == "" || t[0] == '#':
		return i, nil
	case t[0] == '[':
		return i, p.header(n, t)
	}
	key, val, ok := strings.Cut(t, ":")
	key = strings.TrimSpace(key)
	if !ok || !isKey(key) {
		return i, errAt(n, "expected `key: value`, `[step:NAME]` or a # comment, found %q", clip(t))
	}
	if p.step == nil {
		return i, p.topKey(n, key, val)
	}
	if !slices.Contains(legacyStepKeys, key) {
		return i, errAt(n, "unknown key %q in step %q; known keys are %s", key, p.step.Name, strings.Join(legacyStepKeys, ", "))
	}
	if first, dup := p.seen[key]; dup {
		return i, errAt(n, "%s is set twice in step %q (first at line %d)", key, p.step.Name, first)
	}
	p.seen[key] = n
	if key == "run" {
		return p.run(i, val)
	}
	return i, p.stepKey(n, key, val)
}

// header starts a step: `[step:NAME]`, optionally followed by a comment.
// The name ends at the first `]` followed by nothing or a comment, so both
// `[step:Build] # see [docs]` and `[step:a]b]` read as Kod meant them.
func (p *legacyParser) header(n int, t string) *ParseError {
	end := strings.IndexByte(t, ']')
	if end >= 0 && !endsHeader(t[end+1:]) {
		end = strings.LastIndexByte(t, ']')
	}
	if end < 0 {
		return errAt(n, "unterminated section header %q; want [step:NAME]", clip(t))
	}
	if !endsHeader(t[end+1:]) {
		return errAt(n, "unexpected %q after the section header", clip(strings.TrimSpace(t[end+1:])))
	}
	name, ok := strings.CutPrefix(t[1:end], "step:")
	if !ok {
		return errAt(n, "unknown section %q; the line syntax only has [step:NAME]", clip(t[:end+1]))
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return errAt(n, "empty step name; write [step:NAME]")
	}
	if err := checkStepName(name); err != nil {
		return errAt(n, "%v", err)
	}
	if len(p.wf.Steps) == MaxSteps {
		return errAt(n, "too many steps: a workflow file may have at most %d (split it into several files)", MaxSteps)
	}
	if perr := p.endStep(); perr != nil {
		return perr
	}
	p.wf.Steps = append(p.wf.Steps, Step{Name: name, Line: n, Interpolate: true})
	p.step = &p.wf.Steps[len(p.wf.Steps)-1]
	p.seen = map[string]int{}
	return nil
}

func endsHeader(rest string) bool {
	rest = strings.TrimSpace(rest)
	return rest == "" || rest[0] == '#'
}

// endStep checks the step being read once its section is over.
func (p *legacyParser) endStep() *ParseError {
	if p.step != nil && p.step.Run == "" {
		return errAt(p.step.Line, "step %q has no run: key", p.step.Name)
	}
	return nil
}

func (p *legacyParser) topKey(n int, key, raw string) *ParseError {
	if key != "timeout" {
		if slices.Contains(legacyStepKeys, key) {
			return errAt(n, "%s: must be inside a step; start one with [step:NAME]", key)
		}
		return errAt(n, "unknown key %q; before the first [step:NAME] only timeout is allowed", key)
	}
	if first, dup := p.seen[key]; dup {
		return errAt(n, "timeout is set twice (first at line %d)", first)
	}
	p.seen[key] = n
	d, err := legacySeconds(legacyValue(raw))
	if err != nil {
		return errAt(n, "timeout %v", err)
	}
	p.wf.Timeout = d
	return nil
}

func (p *legacyParser) stepKey(n int, key, raw string) *ParseError {
	s := p.step
	v := legacyValue(raw)
	if v.text == "" && !v.quoted {
		return errAt(n, "%s: missing value", key)
	}
	var err error
	switch key {
	case "if":
		s.If, err = ParseCondition(v.text)
	case "working_dir":
		s.WorkingDir, err = cleanWorkingDir(v.text)
	case "continue_on_error":
		if v.kind != kindBool {
			err = fmt.Errorf("must be true or false, got %q", v.text)
		}
		s.ContinueOnError = v.text == "true"
	case "image":
		s.Image = v.text
		if strings.TrimSpace(v.text) == "" {
			err = fmt.Errorf("is empty (leave it out for the default image)")
		}
	case "timeout":
		s.Timeout, err = legacySeconds(v)
	}
	if err != nil {
		if key == "if" {
			return errAt(n, "if: %v", err)
		}
		return errAt(n, "%s %v", key, err)
	}
	return nil
}

// Value kinds of the line syntax.
const (
	kindString = iota
	kindBool
	kindInt
)

type lvalue struct {
	text   string // without quotes and comment
	kind   int
	quoted bool
}

// legacyValue types a raw value: the inline comment is removed, then
// true/false is a boolean, [+-]digits an integer, a quoted string loses its
// quotes, and anything else is its trimmed text.
func legacyValue(raw string) lvalue {
	s := strings.TrimSpace(stripComment(raw))
	if u, ok := unquote(s); ok {
		return lvalue{text: u, kind: kindString, quoted: true}
	}
	switch {
	case s == "true" || s == "false":
		return lvalue{text: s, kind: kindBool}
	case isInteger(s):
		return lvalue{text: s, kind: kindInt}
	}
	return lvalue{text: s, kind: kindString}
}

func legacySeconds(v lvalue) (_ time.Duration, err error) {
	if v.quoted {
		return 0, fmt.Errorf("must be a whole number of seconds without quotes (e.g. timeout: 120)")
	}
	if v.kind != kindInt {
		return 0, fmt.Errorf("must be a whole number of seconds (e.g. timeout: 120), got %q", v.text)
	}
	n, err := strconv.ParseInt(v.text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", v.text)
	}
	return checkSeconds(n)
}

// stripComment removes a ` # comment`: a # that starts the text or follows a
// space or tab, outside single and double quotes. `a#b` and "a # b" keep it.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// unquote removes the quotes of a value that is one quoted string: it starts
// and ends with the same quote and holds no other. `"a" "b"` is not one.
func unquote(s string) (string, bool) {
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') || s[len(s)-1] != s[0] {
		return "", false
	}
	inner := s[1 : len(s)-1]
	if strings.IndexByte(inner, s[0]) >= 0 {
		return "", false
	}
	return inner, true
}

func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isKey(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '_' && !isAlnum(s[i]) {
			return false
		}
	}
	return s != ""
}

// clip shortens text quoted in a message.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}
