package workflow

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kod-forge/kod/forge"
)

// maxMatrixProduct bounds the combinations a matrix may have before its
// excludes: beyond it, the count is reported without expanding them.
const maxMatrixProduct = 4096

// matrix reads the [matrix] table: each key but exclude is an axis (an
// array of strings or integers, the integers turned into text), in the
// order written; exclude is an array of tables of axis = value.
func (p *tomlParser) matrix(v any) (*Matrix, *ParseError) {
	line := p.keys.line(-1, "matrix")
	t, ok := v.(map[string]any)
	if !ok {
		return nil, errAt(line, "matrix must be a table ([matrix] with AXIS = [values]), got %s", typeName(v))
	}
	m := &Matrix{}
	for _, name := range p.axisOrder(t) {
		axis, perr := p.axis(name, t[name])
		if perr != nil {
			return nil, perr
		}
		m.Axes = append(m.Axes, axis)
	}
	if len(m.Axes) == 0 {
		return nil, errAt(line, "matrix has no axes; write AXIS = [\"value\", ...]")
	}
	if v, ok := t["exclude"]; ok {
		var perr *ParseError
		if m.Exclude, perr = p.excludes(v, m); perr != nil {
			return nil, perr
		}
	}
	if m.size(maxMatrixProduct) > maxMatrixProduct {
		return nil, errAt(line, "the matrix has more than %d combinations; a file may expand to at most %d workflow instances", maxMatrixProduct, MaxMatrix)
	}
	switch n := len(m.Combinations()); {
	case n == 0:
		return nil, errAt(p.keys.line(-1, "matrix", "exclude"), "exclude leaves no combination of the matrix")
	case n > MaxMatrix:
		return nil, errAt(line, "the matrix has %d combinations after excludes; a file may expand to at most %d workflow instances (split it, or exclude more)", n, MaxMatrix)
	}
	return m, nil
}

// axisOrder returns the axis names of the [matrix] table t in the order
// the file writes them (the decoder's key order; TOML tables have none).
func (p *tomlParser) axisOrder(t map[string]any) []string {
	var names []string
	for _, k := range p.order {
		if len(k) == 2 && k[0] == "matrix" && k[1] != "exclude" && !slices.Contains(names, k[1]) {
			if _, ok := t[k[1]]; ok {
				names = append(names, k[1])
			}
		}
	}
	var rest []string // not expected: keys the decoder did not list
	for k := range t {
		if k != "exclude" && !slices.Contains(names, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}

// axis reads one matrix axis.
func (p *tomlParser) axis(name string, v any) (MatrixAxis, *ParseError) {
	line := p.keys.line(-1, "matrix", name)
	a := MatrixAxis{Name: name}
	if !validEnvName(name) {
		return a, errAt(line, "matrix axis %q: the name must be letters, digits and _, not starting with a digit (it becomes MATRIX_%s)", clip(name), clip(name))
	}
	list, ok := v.([]any)
	if !ok {
		return a, errAt(line, "matrix axis %s must be an array of strings or integers, got %s", name, typeName(v))
	}
	if len(list) == 0 {
		return a, errAt(line, "matrix axis %s is empty; give it at least one value", name)
	}
	for _, e := range list {
		s, err := matrixValue(e)
		if err != nil {
			return a, errAt(line, "matrix axis %s: %v", name, err)
		}
		if slices.Contains(a.Values, s) {
			return a, errAt(line, "matrix axis %s has %q twice", name, clip(s))
		}
		a.Values = append(a.Values, s)
	}
	return a, nil
}

// matrixValue turns an axis value (a string or an integer) into text.
func matrixValue(v any) (string, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case int64:
		return strconv.FormatInt(v, 10), nil
	default:
		return "", fmt.Errorf("values must be strings or integers, found %s (quote it)", typeName(v))
	}
	switch {
	case strings.TrimSpace(s) == "":
		return "", fmt.Errorf("a value is empty")
	case forge.HasHidden(s):
		return "", fmt.Errorf("value %q contains control or invisible format characters (such as a zero-width space or a bidirectional override)", clip(s))
	}
	return s, nil
}

// excludes reads `exclude = [{ AXIS = value, ... }, ...]`: every axis
// named must be one of m's, and every value one of that axis's.
func (p *tomlParser) excludes(v any, m *Matrix) ([]map[string]string, *ParseError) {
	line := p.keys.line(-1, "matrix", "exclude")
	var list []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		list = v
	case []any:
		for _, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				return nil, errAt(line, "exclude must be an array of tables ({ AXIS = \"value\" }), found %s", typeName(e))
			}
			list = append(list, t)
		}
	default:
		return nil, errAt(line, "exclude must be an array of tables ({ AXIS = \"value\" }), got %s", typeName(v))
	}
	var out []map[string]string
	for _, t := range list {
		if len(t) == 0 {
			return nil, errAt(line, "exclude has an empty table, which would exclude every combination")
		}
		ex := make(map[string]string, len(t))
		for _, name := range slices.Sorted(maps.Keys(t)) {
			i := slices.IndexFunc(m.Axes, func(a MatrixAxis) bool { return a.Name == name })
			if i < 0 {
				return nil, errAt(line, "exclude names %q, which is not a matrix axis; the axes are %s", clip(name), axisNames(m))
			}
			val, err := matrixValue(t[name])
			if err != nil {
				return nil, errAt(line, "exclude %s: %v", name, err)
			}
			if !slices.Contains(m.Axes[i].Values, val) {
				return nil, errAt(line, "exclude %s = %q: not a value of axis %s (%s)", name, clip(val), name, strings.Join(m.Axes[i].Values, ", "))
			}
			ex[name] = val
		}
		out = append(out, ex)
	}
	return out, nil
}

func axisNames(m *Matrix) string {
	names := make([]string, len(m.Axes))
	for i, a := range m.Axes {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}
