package workflow

import (
	"fmt"
	"slices"
	"strings"
)

// MaxMatrix is the largest number of workflow instances one matrix may
// expand to, after its excludes.
const MaxMatrix = 64

// Combinations returns the matrix's combinations after its excludes, in
// row-major order (the first axis varies slowest), each as one EnvVar per
// axis in axis order (Name = the axis name, not MATRIX_...). A nil matrix
// has none.
func (m *Matrix) Combinations() [][]EnvVar {
	if m == nil || len(m.Axes) == 0 {
		return nil
	}
	var out [][]EnvVar
	idx := make([]int, len(m.Axes))
	for {
		combo := make([]EnvVar, len(m.Axes))
		for i, a := range m.Axes {
			combo[i] = EnvVar{Name: a.Name, Value: a.Values[idx[i]]}
		}
		if !m.excluded(combo) {
			out = append(out, combo)
		}
		i := len(idx) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(m.Axes[i].Values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return out
		}
	}
}

func (m *Matrix) excluded(combo []EnvVar) bool {
	for _, ex := range m.Exclude {
		all := true
		for _, v := range combo {
			if want, ok := ex[v.Name]; ok && want != v.Value {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// size is the number of combinations before excludes, saturating at
// limit+1 so a large product cannot overflow.
func (m *Matrix) size(limit int) int {
	n := 1
	for _, a := range m.Axes {
		n *= len(a.Values)
		if n > limit {
			return limit + 1
		}
	}
	return n
}

// ExpandMatrix replaces each {matrix.AXIS} in s by the value of AXIS in
// values (one matrix combination). Other text, including other {...}, is
// kept; the parser has checked every {matrix.X} names an axis.
func ExpandMatrix(s string, values []EnvVar) string {
	if !strings.Contains(s, "{matrix.") {
		return s
	}
	var b strings.Builder
	for {
		open := strings.Index(s, "{matrix.")
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			break
		}
		name := s[open+len("{matrix.") : open+end]
		i := slices.IndexFunc(values, func(v EnvVar) bool { return v.Name == name })
		if i < 0 {
			b.WriteString(s[:open+end+1])
		} else {
			b.WriteString(s[:open])
			b.WriteString(values[i].Value)
		}
		s = s[open+end+1:]
	}
	b.WriteString(s)
	return b.String()
}

// checkMatrixRefs checks that every {matrix.X} in s names an axis of m
// (m may be nil: then any {matrix.X} is an error).
func checkMatrixRefs(s string, m *Matrix) error {
	for rest := s; ; {
		open := strings.Index(rest, "{matrix.")
		if open < 0 {
			return nil
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return fmt.Errorf("%q has an unclosed {matrix.", clip(s))
		}
		name := rest[open+len("{matrix.") : open+end]
		rest = rest[open+end+1:]
		if m == nil {
			return fmt.Errorf("{matrix.%s}: the workflow has no [matrix] table", clip(name))
		}
		if !slices.ContainsFunc(m.Axes, func(a MatrixAxis) bool { return a.Name == name }) {
			names := make([]string, len(m.Axes))
			for i, a := range m.Axes {
				names[i] = a.Name
			}
			return fmt.Errorf("{matrix.%s}: no such matrix axis; the axes are %s", clip(name), strings.Join(names, ", "))
		}
	}
}
