package workflow

// MaxNesting is how deeply arrays and inline tables may nest in a TOML
// workflow file, MaxKeyParts how many dot-separated parts one key may have,
// and MaxItems how many keys, tables and array elements the file may hold
// in all. A workflow needs three or four levels and a few thousand items at
// most (MaxSteps steps of a dozen keys and some env). The TOML decoder's
// time and memory grow with the items and with the square of their depth (a
// 16 KB file of 4,000 nested inline tables took 37 s and 1.6 GB, a 1 MiB
// one of 30 levels as long and 1.2 GB, half a million array elements 4 s),
// so checkDepth refuses such a file before it is decoded: within these
// limits a file decodes in well under a second.
const (
	MaxNesting  = 8
	MaxKeyParts = 8
	MaxItems    = 10000
)

// checkDepth scans src once, in linear time and without allocating, and
// refuses nesting deeper than MaxNesting (brackets and braces outside
// strings and comments), keys of more than MaxKeyParts parts (dots outside
// strings between two of `=`, `,`, a bracket or brace, or a line end) and
// more than MaxItems items (each `=`, `,`, bracket and brace counts one),
// naming the line. Values with dots (1.5, dates) count one dot at most. It
// does not validate the syntax: the decoder does that afterwards.
func checkDepth(src string) *ParseError {
	line, depth, dots, items := 1, 0, 0, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '\n':
			line++
			dots = 0
		case '#':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			end, lines := skipString(src, i)
			line += lines
			i = end - 1
		case '[', '{':
			depth++
			items++
			dots = 0
			if depth > MaxNesting {
				return errAt(line, "arrays and tables nest more than %d levels deep here; a workflow file may nest at most %d", MaxNesting, MaxNesting)
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
			dots = 0
		case '=', ',':
			items++
			dots = 0
		case '.':
			dots++
			if dots >= MaxKeyParts {
				return errAt(line, "a key here has more than %d dot-separated parts; a workflow file's keys may have at most %d", MaxKeyParts, MaxKeyParts)
			}
		}
		if items > MaxItems {
			return errAt(line, "more than %d keys, tables and array elements by this line; a workflow file may hold at most %d (split it into several files)", MaxItems, MaxItems)
		}
	}
	return nil
}

// skipString returns the index just past the string starting at src[i]
// (a single or double quote, alone or three in a row), and how many line
// ends it spans. An unclosed string runs to the end of its line
// (single-line) or of src (multi-line); the decoder reports it.
func skipString(src string, i int) (end, lines int) {
	q := src[i]
	if i+2 < len(src) && src[i+1] == q && src[i+2] == q { // multi-line
		for j := i + 3; j < len(src); j++ {
			switch {
			case src[j] == '\n':
				lines++
			case q == '"' && src[j] == '\\':
				if j+1 < len(src) && src[j+1] == '\n' {
					lines++
				}
				j++
			case src[j] == q && j+2 < len(src) && src[j+1] == q && src[j+2] == q:
				// Up to two more quotes may end the content (""""" is legal).
				k := j + 3
				for n := 0; n < 2 && k < len(src) && src[k] == q; n++ {
					k++
				}
				return k, lines
			}
		}
		return len(src), lines
	}
	for j := i + 1; j < len(src); j++ {
		switch {
		case src[j] == '\n':
			return j, 0 // unclosed: the newline is the caller's
		case q == '"' && src[j] == '\\':
			j++
			if j < len(src) && src[j] == '\n' {
				return j, 0
			}
		case src[j] == q:
			return j + 1, 0
		}
	}
	return len(src), 0
}
