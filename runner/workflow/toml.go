package workflow

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The TOML format (parsed with BurntSushi/toml):
//
//	timeout = 600            # whole workflow, seconds, 1..86400 (default 300)
//	image = "alpine:3.20"    # default image of every step
//	pull = "always"          # or "if-not-present" / "never"; absent: the server's policy
//	network = "none"         # or "bridge" / absent: a dedicated network
//	[env]                    # NAME = "value"; integers and booleans are turned into text
//	GREETING = "hi"
//	[on]                     # optional; absent = every push of every branch
//	push = ["main", "release/*"]   # branch patterns, see MatchBranch
//	schedule = ["0 3 * * *"]       # cron, 5 fields or @descriptor
//	[[steps]]                # at least one, at most MaxSteps
//	name = "test"            # required, unique, no control characters
//	run = "make test"        # required, run as written (no interpolation)
//	image, pull, if, working_dir, continue_on_error, timeout, env   # optional
//	needs, shell, artifacts, artifacts_when                          # optional, see pipeline.go
//
// and the pipeline keys of the workflow (pipeline.go, services.go): matrix,
// fail_fast, shell, clone, [[services]], [[caches]].
//
// Keys are matched exactly and an unknown key is an error (a typo must not
// be ignored). BurntSushi/toml matches struct fields ignoring case and leaves
// type errors without a position, so the file is decoded into plain maps and
// checked here instead, with lines from scanKeys.
var (
	topKeys  = []string{"timeout", "image", "pull", "network", "env", "on", "steps", "matrix", "fail_fast", "shell", "clone", "services", "caches"}
	onKeys   = []string{"push", "schedule"}
	stepKeys = []string{"name", "run", "image", "pull", "if", "working_dir", "continue_on_error", "timeout", "env", "needs", "shell", "artifacts", "artifacts_when"}
)

// tomlParser checks a decoded TOML document; keys finds line numbers.
type tomlParser struct {
	keys  keyIndex
	opts  Options
	order []toml.Key // every key in the order written (the decoder's)
}

// parseTOML parses the TOML format. Errors point at the offending key, or at
// the [[steps]] header for a missing one.
func parseTOML(src string, opts Options) (*Workflow, *ParseError) {
	raw := map[string]any{}
	md, err := toml.Decode(src, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, errAt(pe.Position.Line, "TOML syntax: %s", pe.Message)
		}
		return nil, errAt(0, "TOML: %v", err)
	}
	p := &tomlParser{keys: scanKeys(src), opts: opts, order: md.Keys()}
	steps, perr := p.stepTables(raw)
	if perr != nil {
		return nil, perr
	}
	services, perr := p.tables(raw, "services")
	if perr != nil {
		return nil, perr
	}
	caches, perr := p.tables(raw, "caches")
	if perr != nil {
		return nil, perr
	}
	if perr := p.unknownKeys(raw, steps, services, caches); perr != nil {
		return nil, perr
	}
	if len(steps) > MaxSteps {
		return nil, errAt(p.keys.line(MaxSteps, "steps"), "too many steps: a workflow file may have at most %d, this one has %d (split it into several files)", MaxSteps, len(steps))
	}
	wf := &Workflow{Format: FormatTOML, Timeout: DefaultTimeout}
	if perr := p.top(raw, wf); perr != nil {
		return nil, perr
	}
	for i, t := range steps {
		s, perr := p.step(i, t)
		if perr != nil {
			return nil, perr
		}
		wf.Steps = append(wf.Steps, s)
	}
	if len(wf.Steps) == 0 {
		return nil, errAt(1, "no steps: add at least one [[steps]] table with a name and a run script")
	}
	nameLine := func(i int) int { return p.keys.line(i, "steps", "name") }
	if perr := checkUniqueNames(wf.Steps, nameLine); perr != nil {
		return nil, perr
	}
	if perr := p.pipeline(raw, wf, services, caches); perr != nil {
		return nil, perr
	}
	return wf, nil
}

// stepTables returns the [[steps]] entries as tables.
func (p *tomlParser) stepTables(raw map[string]any) ([]map[string]any, *ParseError) {
	return p.tables(raw, "steps")
}

// tables returns the entries of the array of tables raw[name] ([[name]]).
func (p *tomlParser) tables(raw map[string]any, name string) ([]map[string]any, *ParseError) {
	v, ok := raw[name]
	if !ok {
		return nil, nil
	}
	bad := errAt(p.keys.line(-1, name), "%s must be an array of tables ([[%s]]), got %s", name, name, typeName(v))
	switch v := v.(type) {
	case []map[string]any:
		return v, nil
	case []any:
		tables := make([]map[string]any, 0, len(v))
		for _, e := range v {
			t, ok := e.(map[string]any)
			if !ok {
				return nil, bad
			}
			tables = append(tables, t)
		}
		return tables, nil
	}
	return nil, bad
}

// unknownKeys rejects the first key, in file order, that the format does not
// know, so a typo (`timout`, `working-dir`) is never silently ignored.
func (p *tomlParser) unknownKeys(raw map[string]any, steps, services, caches []map[string]any) *ParseError {
	type unknown struct {
		line int
		msg  string
	}
	var found []unknown
	for k := range raw {
		if !slices.Contains(topKeys, k) {
			found = append(found, unknown{p.keys.line(-1, k),
				fmt.Sprintf("unknown key %q; known keys are %s", k, strings.Join(topKeys, ", "))})
		}
	}
	if on, ok := raw["on"].(map[string]any); ok {
		for k := range on {
			if !slices.Contains(onKeys, k) {
				found = append(found, unknown{p.keys.line(-1, "on", k),
					fmt.Sprintf("unknown key %q in [on]; known keys are %s", k, strings.Join(onKeys, ", "))})
			}
		}
	}
	for i, t := range steps {
		for k := range t {
			if !slices.Contains(stepKeys, k) {
				found = append(found, unknown{p.keys.line(i, "steps", k),
					fmt.Sprintf("unknown step key %q; known keys are %s", k, strings.Join(stepKeys, ", "))})
			}
		}
	}
	for _, a := range []struct {
		name   string
		tables []map[string]any
		known  []string
	}{{"services", services, serviceKeys}, {"caches", caches, cacheKeys}} {
		for i, t := range a.tables {
			for k := range t {
				if !slices.Contains(a.known, k) {
					found = append(found, unknown{p.keys.line(i, a.name, k),
						fmt.Sprintf("unknown key %q in [[%s]]; known keys are %s", k, a.name, strings.Join(a.known, ", "))})
				}
			}
		}
	}
	if clone, ok := raw["clone"].(map[string]any); ok {
		for k := range clone {
			if k != "depth" {
				found = append(found, unknown{p.keys.line(-1, "clone", k),
					fmt.Sprintf("unknown key %q in clone; the only key is depth", k)})
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	first := slices.MinFunc(found, func(a, b unknown) int {
		return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.msg, b.msg))
	})
	return errAt(first.line, "%s", first.msg)
}

// top fills the workflow-level settings.
func (p *tomlParser) top(raw map[string]any, wf *Workflow) *ParseError {
	var perr *ParseError
	if v, ok := raw["timeout"]; ok {
		if wf.Timeout, perr = p.seconds(v, -1, "timeout"); perr != nil {
			return perr
		}
	}
	if v, ok := raw["image"]; ok {
		if wf.Image, perr = p.image(v, -1, "image"); perr != nil {
			return perr
		}
	}
	if v, ok := raw["pull"]; ok {
		if wf.Pull, perr = p.pull(v, -1, "pull"); perr != nil {
			return perr
		}
	}
	if v, ok := raw["network"]; ok {
		s, perr := p.str(v, -1, "network")
		if perr != nil {
			return perr
		}
		var err error
		if wf.Network, err = checkNetwork(s); err != nil {
			return errAt(p.keys.line(-1, "network"), "network %v", err)
		}
	}
	if v, ok := raw["env"]; ok {
		if wf.Env, perr = p.env(v, -1, "env"); perr != nil {
			return perr
		}
	}
	if v, ok := raw["on"]; ok {
		if wf.On, perr = p.triggers(v); perr != nil {
			return perr
		}
	}
	return nil
}

func (p *tomlParser) triggers(v any) (Triggers, *ParseError) {
	on, ok := v.(map[string]any)
	if !ok {
		return Triggers{}, errAt(p.keys.line(-1, "on"), "on must be a table ([on]), got %s", typeName(v))
	}
	tr := Triggers{Set: true}
	var perr *ParseError
	if v, ok := on["push"]; ok {
		if tr.Push, perr = p.stringList(v, -1, "on", "push"); perr != nil {
			return tr, perr
		}
	}
	if v, ok := on["schedule"]; ok {
		if tr.Schedule, perr = p.stringList(v, -1, "on", "schedule"); perr != nil {
			return tr, perr
		}
		for _, c := range tr.Schedule {
			if err := checkCron(c, p.opts.minScheduleInterval()); err != nil {
				return tr, errAt(p.keys.line(-1, "on", "schedule"), "on.schedule: %v", err)
			}
		}
	}
	return tr, nil
}

// step checks one [[steps]] table; i is its 0-based index.
func (p *tomlParser) step(i int, t map[string]any) (Step, *ParseError) {
	s := Step{Line: p.keys.line(i, "steps")}
	v, ok := t["name"]
	if !ok {
		return s, errAt(s.Line, "step %d has no name", i+1)
	}
	var perr *ParseError
	if s.Name, perr = p.nonEmpty(v, i, "name", fmt.Sprintf("step %d", i+1)); perr != nil {
		return s, perr
	}
	if err := checkStepName(s.Name); err != nil {
		return s, errAt(p.keys.line(i, "steps", "name"), "%v", err)
	}
	if v, ok = t["run"]; !ok {
		return s, errAt(s.Line, "step %q has no run script", s.Name)
	}
	if s.Run, perr = p.nonEmpty(v, i, "run", fmt.Sprintf("step %q", s.Name)); perr != nil {
		return s, perr
	}
	if strings.ContainsRune(s.Run, 0) {
		// An argument cannot hold NUL: the container runtime would refuse
		// the step with a message of its own.
		return s, errAt(p.keys.line(i, "steps", "run"), "step %q: run must not contain a NUL character (\u0000)", s.Name)
	}
	if v, ok := t["image"]; ok {
		if s.Image, perr = p.image(v, i, "steps", "image"); perr != nil {
			return s, perr
		}
	}
	if v, ok := t["pull"]; ok {
		if s.Pull, perr = p.pull(v, i, "steps", "pull"); perr != nil {
			return s, perr
		}
	}
	if v, ok := t["if"]; ok {
		src, perr := p.str(v, i, "steps", "if")
		if perr != nil {
			return s, perr
		}
		c, err := ParseCondition(src)
		if err != nil {
			return s, errAt(p.keys.line(i, "steps", "if"), "if: %v", err)
		}
		s.If = c
	}
	if v, ok := t["working_dir"]; ok {
		dir, perr := p.str(v, i, "steps", "working_dir")
		if perr != nil {
			return s, perr
		}
		var err error
		if s.WorkingDir, err = cleanWorkingDir(dir); err != nil {
			return s, errAt(p.keys.line(i, "steps", "working_dir"), "working_dir %v", err)
		}
	}
	if v, ok := t["continue_on_error"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return s, errAt(p.keys.line(i, "steps", "continue_on_error"), "continue_on_error must be true or false, got %s", typeName(v))
		}
		s.ContinueOnError = b
	}
	if v, ok := t["timeout"]; ok {
		if s.Timeout, perr = p.seconds(v, i, "steps", "timeout"); perr != nil {
			return s, perr
		}
	}
	if v, ok := t["env"]; ok {
		if s.Env, perr = p.env(v, i, "steps", "env"); perr != nil {
			return s, perr
		}
	}
	return s, p.stepPipeline(i, t, &s)
}

// seconds reads a timeout: a TOML integer of seconds, 1 s to 24 h.
func (p *tomlParser) seconds(v any, step int, path ...string) (time.Duration, *ParseError) {
	key := path[len(path)-1]
	n, ok := v.(int64)
	if !ok {
		return 0, errAt(p.keys.line(step, path...), "%s must be a whole number of seconds (e.g. %s = 600), got %s", key, key, typeName(v))
	}
	d, err := checkSeconds(n)
	if err != nil {
		return 0, errAt(p.keys.line(step, path...), "%s %v", key, err)
	}
	return d, nil
}

func (p *tomlParser) str(v any, step int, path ...string) (string, *ParseError) {
	s, ok := v.(string)
	if !ok {
		return "", errAt(p.keys.line(step, path...), "%s must be a string, got %s", strings.Join(path, "."), typeName(v))
	}
	return s, nil
}

// nonEmpty reads a step's required string key (name, run).
func (p *tomlParser) nonEmpty(v any, step int, key, label string) (string, *ParseError) {
	s, perr := p.str(v, step, "steps", key)
	if perr == nil && strings.TrimSpace(s) == "" {
		perr = errAt(p.keys.line(step, "steps", key), "%s: %s is empty", label, key)
	}
	return s, perr
}

func (p *tomlParser) image(v any, step int, path ...string) (string, *ParseError) {
	s, perr := p.str(v, step, path...)
	if perr == nil && strings.TrimSpace(s) == "" {
		perr = errAt(p.keys.line(step, path...), "image is empty (leave it out for the default image)")
	}
	return s, perr
}

func (p *tomlParser) stringList(v any, step int, path ...string) ([]string, *ParseError) {
	line := p.keys.line(step, path...)
	name := strings.Join(path, ".")
	list, ok := v.([]any)
	if !ok {
		return nil, errAt(line, "%s must be an array of strings, got %s", name, typeName(v))
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, errAt(line, "%s must hold only strings, found %s", name, typeName(e))
		}
		if strings.TrimSpace(s) == "" {
			return nil, errAt(line, "%s holds an empty string", name)
		}
		out = append(out, s)
	}
	return out, nil
}

// env reads an env table. Values are strings; integers and booleans are
// accepted and written out in decimal / true|false, because `PORT = 8080`
// is an obvious thing to write. Floats are refused: `VERSION = 1.20` would
// silently become "1.2". The result is sorted by name, since TOML tables
// have no order.
func (p *tomlParser) env(v any, step int, path ...string) ([]EnvVar, *ParseError) {
	t, ok := v.(map[string]any)
	if !ok {
		return nil, errAt(p.keys.line(step, path...), "%s must be a table of NAME = \"value\", got %s", strings.Join(path, "."), typeName(v))
	}
	out := make([]EnvVar, 0, len(t))
	for name, val := range t {
		line := p.keys.line(step, append(path, name)...)
		if !validEnvName(name) {
			return nil, errAt(line, "env name %q is not a valid variable name (letters, digits and _, not starting with a digit)", name)
		}
		var s string
		switch val := val.(type) {
		case string:
			s = val
		case int64:
			s = strconv.FormatInt(val, 10)
		case bool:
			s = strconv.FormatBool(val)
		default:
			return nil, errAt(line, "env %s must be a string, integer or boolean, got %s (quote it)", name, typeName(val))
		}
		if strings.ContainsRune(s, 0) {
			return nil, errAt(line, "env %s must not contain a NUL character (\u0000)", name)
		}
		out = append(out, EnvVar{Name: name, Value: s})
	}
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// typeName names a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("string %q", clip(v))
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case map[string]any:
		return "table"
	case []map[string]any, []any:
		return "array"
	case time.Time:
		return "date/time"
	}
	return fmt.Sprintf("%T", v)
}
