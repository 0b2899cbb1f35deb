package workflow

import (
	"slices"
	"strconv"
	"strings"
)

// BurntSushi/toml keeps key positions private, so semantic errors find their
// line with this small scanner. It runs only on files the TOML parser has
// accepted, and records where each `key =` and each table header is; keys
// inside inline tables are not recorded (a lookup falls back to the line of
// the key holding the inline table).

// keyIndex maps a key, in the array-of-tables entry it belongs to
// ([[steps]], [[services]], [[caches]]), to the line of its first
// occurrence; see indexKey.
type keyIndex map[string]int

// indexKey is the map key of path in entry step of the array of tables
// path[0] names (-1 outside such arrays).
func indexKey(step int, path []string) string {
	return strconv.Itoa(step) + "\x00" + strings.Join(path, "\x00")
}

func (ix keyIndex) add(step, line int, path []string) {
	k := indexKey(step, path)
	if _, ok := ix[k]; !ok {
		ix[k] = line
	}
}

// line returns the line of path in step (-1 for keys outside steps). When the
// exact key is not recorded it tries its parents, then the step's header, and
// returns 0 only if nothing matches.
func (ix keyIndex) line(step int, path ...string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := ix[indexKey(step, path[:n])]; ok {
			return l
		}
	}
	if step >= 0 && len(path) > 0 { // written as an inline array: `steps = [{...}]`
		return ix.line(-1, path[0])
	}
	return 0
}

type keyScanner struct {
	src    string
	i      int
	line   int
	table  []string       // path of the current [table] or [[array]]
	arrays map[string]int // headers seen so far of each array of tables in tableArrays
	out    keyIndex
}

func scanKeys(src string) keyIndex {
	s := &keyScanner{src: src, line: 1, out: keyIndex{}, arrays: map[string]int{}}
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			s.newline()
		case '#':
			s.skipComment()
		case '[':
			s.header()
		default:
			s.keyValue()
		}
	}
	return s.out
}

func (s *keyScanner) newline() { s.i++; s.line++ }

func (s *keyScanner) skipComment() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

// tableArrays are the top-level arrays of tables whose entries keyIndex
// tells apart.
var tableArrays = []string{"steps", "services", "caches"}

// step is the entry of the array of tables keys at the current position
// belong to, -1 outside one.
func (s *keyScanner) step() int {
	if len(s.table) > 0 && s.arrays[s.table[0]] > 0 {
		return s.arrays[s.table[0]] - 1
	}
	return -1
}

func (s *keyScanner) header() {
	array := strings.HasPrefix(s.src[s.i:], "[[")
	start := s.i + 1
	if array {
		start++
	}
	end := start
	for end < len(s.src) && s.src[end] != ']' && s.src[end] != '\n' {
		end++
	}
	s.table = splitKey(s.src[start:end])
	if array && len(s.table) == 1 && slices.Contains(tableArrays, s.table[0]) {
		s.arrays[s.table[0]]++
	}
	s.out.add(s.step(), s.line, s.table)
	s.i = end
	s.skipComment() // the closing brackets and any comment
}

func (s *keyScanner) keyValue() {
	start := s.i
	var quote byte
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		c := s.src[s.i]
		if quote != 0 {
			if c == '\\' && quote == '"' {
				s.i++
			} else if c == quote {
				quote = 0
			}
		} else if c == '"' || c == '\'' {
			quote = c
		} else if c == '=' {
			break
		}
		s.i++
	}
	if s.i >= len(s.src) || s.src[s.i] != '=' {
		return // not a key line; the TOML parser would have refused it
	}
	s.out.add(s.step(), s.line, append(slices.Clip(s.table), splitKey(s.src[start:s.i])...))
	s.i++
	s.skipValue()
}

// skipValue moves past one value, which may span lines (multi-line strings,
// arrays), and stops at the newline that ends it.
func (s *keyScanner) skipValue() {
	depth := 0
	for s.i < len(s.src) {
		switch c := s.src[s.i]; c {
		case '\n':
			if depth == 0 {
				return
			}
			s.newline()
		case '#':
			s.skipComment()
		case '"', '\'':
			s.skipString(c)
		case '[', '{':
			depth++
			s.i++
		case ']', '}':
			if depth > 0 {
				depth--
			}
			s.i++
		default:
			s.i++
		}
	}
}

func (s *keyScanner) skipString(q byte) {
	delim := string([]byte{q, q, q})
	multi := strings.HasPrefix(s.src[s.i:], delim)
	if multi {
		s.i += 3
	} else {
		s.i++
	}
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\\' && q == '"':
			s.i++
			if s.i < len(s.src) && s.src[s.i] == '\n' {
				s.line++
			}
			s.i++
		case c == '\n':
			if !multi {
				return
			}
			s.newline()
		case multi && strings.HasPrefix(s.src[s.i:], delim):
			s.i += 3
			for n := 0; n < 2 && s.i < len(s.src) && s.src[s.i] == q; n++ {
				s.i++ // up to two quotes may end the content: """a""""
			}
			return
		case !multi && c == q:
			s.i++
			return
		default:
			s.i++
		}
	}
}

// splitKey splits a dotted TOML key (`a.b`, `"a.b".c`, `'x' . y`) into parts.
func splitKey(text string) []string {
	var parts []string
	t := strings.TrimSpace(text)
	for t != "" {
		var part string
		switch t[0] {
		case '"':
			end := 1
			for end < len(t) && t[end] != '"' {
				if t[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end, len(t)-1)
			part = t[:end+1]
			if u, err := strconv.Unquote(part); err == nil {
				part = u
			} else {
				part = strings.Trim(part, `"`)
			}
			t = t[end+1:]
		case '\'':
			end := strings.IndexByte(t[1:], '\'')
			if end < 0 {
				end = len(t) - 1
			}
			part, t = t[1:end+1], t[min(end+2, len(t)):]
		default:
			end := strings.IndexAny(t, ". \t")
			if end < 0 {
				end = len(t)
			}
			part, t = t[:end], t[end:]
		}
		parts = append(parts, part)
		t = strings.TrimLeft(strings.TrimSpace(t), ".")
		t = strings.TrimSpace(t)
	}
	return parts
}
