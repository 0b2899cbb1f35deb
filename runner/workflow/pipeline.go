package workflow

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/kod-forge/kod/forge"
)

// The pipeline keys of the TOML format, in the workflow:
//
//	fail_fast = true            # a failed step cancels the file's other matrix instances
//	shell = "bash"              # default shell of the steps (sh when absent)
//	clone = { depth = 50 }      # commits of history in the workspace; 0 = full
//	[matrix]                    # one workflow instance per combination
//	GO = ["1.25", "1.26"]
//	exclude = [{ GO = "1.25" }]
//
// and in a step: needs, shell, artifacts, artifacts_when. Services and
// caches are in services.go.

// pipeline reads the workflow-level pipeline keys into wf once its steps
// are parsed, and checks what spans keys: the needs graph and the
// {matrix.AXIS} placeholders.
func (p *tomlParser) pipeline(raw map[string]any, wf *Workflow, services, caches []map[string]any) *ParseError {
	var perr *ParseError
	if v, ok := raw["matrix"]; ok {
		if wf.Matrix, perr = p.matrix(v); perr != nil {
			return perr
		}
	}
	if v, ok := raw["fail_fast"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return errAt(p.keys.line(-1, "fail_fast"), "fail_fast must be true or false, got %s", typeName(v))
		}
		wf.FailFast = b
	}
	if v, ok := raw["shell"]; ok {
		if wf.Shell, perr = p.shell(v, -1, "shell"); perr != nil {
			return perr
		}
	}
	if v, ok := raw["clone"]; ok {
		if wf.Clone, perr = p.clone(v); perr != nil {
			return perr
		}
	}
	if wf.Services, perr = p.services(services); perr != nil {
		return perr
	}
	if len(wf.Services) > 0 && wf.Network == "none" {
		return errAt(p.keys.line(-1, "network"), "network = \"none\" leaves the steps no way to reach the services; remove one of them")
	}
	if wf.Caches, perr = p.caches(caches); perr != nil {
		return perr
	}
	if perr := p.checkNeeds(wf.Steps); perr != nil {
		return perr
	}
	return p.checkMatrixRefs(wf)
}

// checkMatrixRefs checks every {matrix.AXIS} where one may be written.
func (p *tomlParser) checkMatrixRefs(wf *Workflow) *ParseError {
	if err := checkMatrixRefs(wf.Image, wf.Matrix); err != nil {
		return errAt(p.keys.line(-1, "image"), "image: %v", err)
	}
	for i, s := range wf.Steps {
		if err := checkMatrixRefs(s.Name, wf.Matrix); err != nil {
			return errAt(p.keys.line(i, "steps", "name"), "step name: %v", err)
		}
		if err := checkMatrixRefs(s.Image, wf.Matrix); err != nil {
			return errAt(p.keys.line(i, "steps", "image"), "step %q: image: %v", s.Name, err)
		}
	}
	for i, s := range wf.Services {
		if err := checkMatrixRefs(s.Image, wf.Matrix); err != nil {
			return errAt(p.keys.line(i, "services", "image"), "service %q: image: %v", s.Name, err)
		}
	}
	return nil
}

// stepPipeline reads a step's pipeline keys.
func (p *tomlParser) stepPipeline(i int, t map[string]any, s *Step) *ParseError {
	var perr *ParseError
	if v, ok := t["needs"]; ok {
		if s.Needs, perr = p.needs(v, i); perr != nil {
			return perr
		}
		s.NeedsSet = true
	}
	if v, ok := t["shell"]; ok {
		if s.Shell, perr = p.shell(v, i, "steps", "shell"); perr != nil {
			return perr
		}
	}
	if v, ok := t["artifacts"]; ok {
		if s.Artifacts, perr = p.artifacts(v, i); perr != nil {
			return perr
		}
	}
	if v, ok := t["artifacts_when"]; ok {
		w, perr := p.str(v, i, "steps", "artifacts_when")
		if perr != nil {
			return perr
		}
		if !slices.Contains(artifactsWhen, w) {
			return errAt(p.keys.line(i, "steps", "artifacts_when"), "artifacts_when %q: use %s", clip(w), strings.Join(artifactsWhen, ", "))
		}
		s.ArtifactsWhen = w
	}
	return nil
}

var artifactsWhen = []string{"always", "success", "failure"}

// MaxArtifacts is the largest number of patterns one step's artifacts may
// list.
const MaxArtifacts = 20

// needs reads a step's `needs`: an array of step names, each once
// (`needs = []` is allowed: the step needs nothing).
func (p *tomlParser) needs(v any, i int) ([]string, *ParseError) {
	line := p.keys.line(i, "steps", "needs")
	list, ok := v.([]any)
	if !ok {
		return nil, errAt(line, "needs must be an array of step names (needs = [\"build\"], or [] for none), got %s", typeName(v))
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		n, ok := e.(string)
		if !ok {
			return nil, errAt(line, "needs must hold only step names (strings), found %s", typeName(e))
		}
		if slices.Contains(out, n) {
			return nil, errAt(line, "needs names %q twice", clip(n))
		}
		out = append(out, n)
	}
	return out, nil
}

// checkNeeds checks the needs of every step: names of other steps of the
// workflow, and no cycle. A step without `needs` waits for the step
// written before it, so that edge counts too.
func (p *tomlParser) checkNeeds(steps []Step) *ParseError {
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		index[s.Name] = i
	}
	deps := make([][]int, len(steps))
	for i, s := range steps {
		if !s.NeedsSet {
			if i > 0 {
				deps[i] = []int{i - 1}
			}
			continue
		}
		for _, n := range s.Needs {
			j, ok := index[n]
			switch {
			case n == s.Name:
				return errAt(p.keys.line(i, "steps", "needs"), "step %q needs itself", clip(s.Name))
			case !ok:
				return errAt(p.keys.line(i, "steps", "needs"), "step %q needs %q, which is not a step of this workflow%s", clip(s.Name), clip(n), suggest(n, steps))
			}
			deps[i] = append(deps[i], j)
		}
	}
	cycle := findCycle(deps)
	if cycle == nil {
		return nil
	}
	// Report it at the first step of the cycle, in file order, that says
	// `needs`: an edge to a later step is always written, never implied.
	at := -1
	var parts []string
	for k, i := range cycle {
		next := cycle[(k+1)%len(cycle)]
		if steps[i].NeedsSet {
			if at < 0 || i < at {
				at = i
			}
			parts = append(parts, fmt.Sprintf("%q needs %q", clip(steps[i].Name), clip(steps[next].Name)))
		} else {
			parts = append(parts, fmt.Sprintf("%q (no needs) waits for %q, the step before it", clip(steps[i].Name), clip(steps[next].Name)))
		}
	}
	return errAt(p.keys.line(at, "steps", "needs"), "needs form a cycle: %s", strings.Join(parts, ", "))
}

// findCycle returns the steps of one cycle of the graph (deps[i] = the
// steps i waits for), starting at its lowest index, in the order they wait
// for each other; nil when there is none.
func findCycle(deps [][]int) []int {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(deps))
	var path []int
	var visit func(i int) []int
	visit = func(i int) []int {
		state[i] = onPath
		path = append(path, i)
		for _, j := range deps[i] {
			switch state[j] {
			case onPath:
				start := slices.Index(path, j)
				return slices.Clone(path[start:])
			case unseen:
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		return nil
	}
	for i := range deps {
		if state[i] != unseen {
			continue
		}
		if c := visit(i); c != nil {
			low := slices.Index(c, slices.Min(c))
			return append(c[low:], c[:low]...)
		}
	}
	return nil
}

// suggest names the step a mistyped name most likely meant: one equal but
// for case, else the closest within an edit distance of 2 ("lnit" for
// "lint"); without one, the steps' names when there are at most 8.
func suggest(n string, steps []Step) string {
	for _, s := range steps {
		if strings.EqualFold(s.Name, n) {
			return fmt.Sprintf(" (did you mean %q?)", clip(s.Name))
		}
	}
	best, bestD := "", 3
	for _, s := range steps {
		if d := editDistance(strings.ToLower(n), strings.ToLower(s.Name)); d < bestD {
			best, bestD = s.Name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", clip(best))
	}
	names := make([]string, 0, len(steps))
	for _, s := range steps {
		names = append(names, fmt.Sprintf("%q", clip(s.Name)))
	}
	if len(names) > 8 {
		return ""
	}
	return "; the steps are " + strings.Join(names, ", ")
}

// shell reads a `shell`: a shell name found on the image's PATH ("bash")
// or an absolute path, without spaces or control characters.
func (p *tomlParser) shell(v any, i int, path_ ...string) (string, *ParseError) {
	s, perr := p.str(v, i, path_...)
	if perr != nil {
		return "", perr
	}
	line := p.keys.line(i, path_...)
	switch {
	case s == "":
		return "", errAt(line, "shell is empty (leave it out for sh)")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", errAt(line, "shell %q: a shell name or path without spaces; options are chosen by kod (bash runs with -eo pipefail, others with -e)", clip(s))
	case s[0] == '-':
		return "", errAt(line, "shell %q: a shell name or path, not an option", clip(s))
	case strings.Contains(s, "/") && (!path.IsAbs(s) || path.Clean(s) != s || strings.HasSuffix(s, "/")):
		return "", errAt(line, "shell %q: write a name found on the PATH (bash) or a clean absolute path (/bin/bash)", clip(s))
	}
	return s, nil
}

// clone reads `clone = { depth = N }`.
func (p *tomlParser) clone(v any) (*Clone, *ParseError) {
	t, ok := v.(map[string]any)
	if !ok {
		return nil, errAt(p.keys.line(-1, "clone"), "clone must be a table (clone = { depth = 50 }), got %s", typeName(v))
	}
	d, ok := t["depth"]
	if !ok {
		return nil, errAt(p.keys.line(-1, "clone"), "clone has no depth; write clone = { depth = N } (0 = full history)")
	}
	n, ok := d.(int64)
	if !ok || n < 0 || n > maxCloneDepth {
		return nil, errAt(p.keys.line(-1, "clone", "depth"), "clone.depth must be a whole number of commits from 0 (full history) to %d, got %s", maxCloneDepth, typeName(d))
	}
	return &Clone{Depth: int(n)}, nil
}

const maxCloneDepth = 1<<31 - 1

// artifacts reads a step's artifact patterns: globs relative to the
// workspace (path.Match syntax), never leaving it; a trailing / names a
// directory. Each is kept cleaned, with its trailing /.
func (p *tomlParser) artifacts(v any, i int) ([]string, *ParseError) {
	list, perr := p.stringList(v, i, "steps", "artifacts")
	if perr != nil {
		return nil, perr
	}
	line := p.keys.line(i, "steps", "artifacts")
	if len(list) > MaxArtifacts {
		return nil, errAt(line, "artifacts lists %d patterns; a step may list at most %d", len(list), MaxArtifacts)
	}
	out := make([]string, 0, len(list))
	for _, pat := range list {
		clean, err := cleanArtifact(pat)
		if err != nil {
			return nil, errAt(line, "artifacts: %v", err)
		}
		out = append(out, clean)
	}
	return out, nil
}

func cleanArtifact(pat string) (string, error) {
	switch {
	case forge.HasControl(pat):
		return "", fmt.Errorf("%q contains control characters", clip(pat))
	case strings.ContainsRune(pat, '\\'):
		return "", fmt.Errorf("%q: use forward slashes (a backslash is not allowed)", clip(pat))
	case path.IsAbs(pat):
		return "", fmt.Errorf("%q must be relative to the workspace, not absolute", clip(pat))
	}
	if _, err := path.Match(pat, ""); err != nil {
		return "", fmt.Errorf("%q is not a valid pattern: %v", clip(pat), err)
	}
	clean := path.Clean(pat)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q leaves the workspace", clip(pat))
	}
	if clean == "." {
		return "", fmt.Errorf("%q names the whole workspace; name files or directories inside it", clip(pat))
	}
	if strings.HasSuffix(pat, "/") {
		clean += "/"
	}
	return clean, nil
}

// editDistance is the optimal string alignment distance between a and b in
// runes: insertions, deletions, substitutions and swaps of two neighbouring
// runes each count 1.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	if len(x) > 64 || len(y) > 64 {
		return max(len(x), len(y))
	}
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
