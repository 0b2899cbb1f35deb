package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
)

// Inputs are what Compile reads from the repository besides the workflow
// files.
type Inputs struct {
	// ReadFile returns a file's bytes at the run's commit; path is relative
	// to the repository root. It is called only for the files cache keys
	// hash ({hash:FILE}), at most once per file. An error wrapping
	// fs.ErrNotExist means the commit has no such file. nil: no file can
	// be read (a cache key with {hash:...} is then an error).
	ReadFile func(path string) ([]byte, error)
}

// Compile turns parsed workflow files (in the run's file order) into the
// run's Plan: one Workflow per file, or per matrix combination (file order,
// then the matrix's row-major order), with every step's image, pull policy,
// shell, environment, working directory, limits and needs resolved, and
// every cache key resolved against the commit (in.ReadFile) and t.Branch.
//
// Resolution, most specific first: image = step, workflow, d.Image (with
// {matrix.AXIS} replaced); pull = step, workflow, d.Pull; shell = step,
// workflow, DefaultShell; clone depth = the file's clone.depth, else
// d.CloneDepth. Env = the workflow's env, MATRIX_<AXIS> for each axis, the
// step's env (later wins), then KOD_CPUS = d.Limits.NanoCPUs rounded up to
// whole CPUs when a CPU limit is set.
//
// Errors: a plan of more than d.MaxSteps steps is a *StepLimitError; a
// cache key hashing a file the commit lacks is a
// *workflow.ParseError naming the workflow file, the line of the cache and
// the file (forge.ErrInvalid); a failure of in.ReadFile is returned
// wrapped. Compile never returns a partial plan.
func Compile(files []*workflow.Workflow, t Trigger, d Defaults, in Inputs) (*Plan, error) {
	c := &compiler{t: t, d: d, in: in, keys: map[string]bool{}, hashes: map[string][]byte{}}
	p := &Plan{Trigger: t}
	expanded := make([][][]workflow.EnvVar, len(files))
	steps, instances := 0, 0
	for i, f := range files {
		combos := f.Matrix.Combinations()
		if combos == nil {
			combos = [][]workflow.EnvVar{nil}
		}
		expanded[i] = combos
		steps += len(combos) * len(f.Steps)
		instances += len(combos)
	}
	// Counted before any step is built: a small file can ask for far more
	// steps (each with its own env) than the limit.
	if d.MaxSteps > 0 && steps > d.MaxSteps {
		return nil, &StepLimitError{Steps: steps, Instances: instances, Max: d.MaxSteps}
	}
	for i, f := range files {
		for _, m := range expanded[i] {
			wf, err := c.workflow(f, m)
			if err != nil {
				return nil, err
			}
			p.Workflows = append(p.Workflows, wf)
		}
	}
	if d.MaxSteps > 0 && c.index > d.MaxSteps {
		return nil, &StepLimitError{Steps: c.index, Instances: len(p.Workflows), Max: d.MaxSteps}
	}
	return p, nil
}

// StepLimitError is Compile's error for a plan with more steps than
// Defaults.MaxSteps. It wraps forge.ErrInvalid: the files ask for it.
type StepLimitError struct {
	Steps, Instances, Max int
}

func (e *StepLimitError) Error() string {
	return fmt.Sprintf("the run has %d steps in %d workflow instances; a run may have at most %d (a matrix multiplies the steps of its file)", e.Steps, e.Instances, e.Max)
}

// Unwrap returns forge.ErrInvalid.
func (e *StepLimitError) Unwrap() error { return forge.ErrInvalid }

type compiler struct {
	t      Trigger
	d      Defaults
	in     Inputs
	keys   map[string]bool   // workflow keys used so far
	index  int               // next step index
	hashes map[string][]byte // file -> bytes, read once per Compile

	sharedKey envKey            // whose env shared is
	shared    []workflow.EnvVar // the env of steps adding none of their own
}

// envKey names a workflow env and matrix combination by their slices.
type envKey struct {
	env  *workflow.EnvVar
	n    int
	cell *workflow.EnvVar
}

// firstOf returns &m[0], or nil for an empty m.
func firstOf(m []workflow.EnvVar) *workflow.EnvVar {
	if len(m) == 0 {
		return nil
	}
	return &m[0]
}

// workflow compiles one instance of f: m is its matrix combination (nil
// without a matrix).
func (c *compiler) workflow(f *workflow.Workflow, m []workflow.EnvVar) (*Workflow, error) {
	wf := &Workflow{
		Key:        c.key(f.File, m),
		File:       f.File,
		Label:      label(f.File, m),
		Matrix:     m,
		Format:     f.Format,
		Timeout:    f.Timeout,
		Network:    f.Network,
		FailFast:   f.FailFast,
		CloneDepth: c.d.CloneDepth,
	}
	if f.Clone != nil {
		wf.CloneDepth = f.Clone.Depth
	}
	for _, s := range f.Services {
		wf.Services = append(wf.Services, c.service(f, s, m))
	}
	for _, cc := range f.Caches {
		cache, err := c.cache(f, cc)
		if err != nil {
			return nil, err
		}
		wf.Caches = append(wf.Caches, cache)
	}
	slugs := map[string]bool{}
	byName := map[string]string{} // step name as written -> ID
	for i := range f.Steps {
		st := &f.Steps[i]
		s := c.step(f, st, wf, m)
		s.ID = wf.Key + "." + unique(slugs, stepSlug(s.Name, i), maxStepSlug)
		byName[st.Name] = s.ID
		wf.Steps = append(wf.Steps, s)
	}
	for i := range f.Steps {
		st := &f.Steps[i]
		switch {
		case !st.NeedsSet && i > 0:
			wf.Steps[i].Needs = []string{wf.Steps[i-1].ID}
		case st.NeedsSet:
			needs := make([]string, 0, len(st.Needs))
			for _, n := range st.Needs {
				id, ok := byName[n]
				if !ok { // the parser refuses unknown names; never a silent drop
					return nil, fmt.Errorf("%s: step %q needs %q, which is not a step of this workflow", f.File, st.Name, n)
				}
				needs = append(needs, id)
			}
			wf.Steps[i].Needs = needs
		}
	}
	return wf, nil
}

func (c *compiler) step(f *workflow.Workflow, st *workflow.Step, wf *Workflow, m []workflow.EnvVar) *Step {
	s := &Step{
		Index:           c.index,
		Name:            workflow.ExpandMatrix(st.Name, m),
		Workflow:        wf,
		Line:            st.Line,
		Image:           workflow.ExpandMatrix(first(st.Image, f.Image, c.d.Image), m),
		Pull:            pull(c.d.Pull, f.Pull, st.Pull),
		Shell:           first(st.Shell, f.Shell, DefaultShell),
		Script:          st.Run,
		Interpolate:     st.Interpolate,
		Exports:         st.Exports,
		If:              st.If,
		Env:             c.env(f.Env, m, st.Env),
		WorkDir:         path.Join(sandbox.WorkspacePath, st.WorkingDir),
		Limits:          c.d.Limits,
		Timeout:         st.Timeout,
		ContinueOnError: st.ContinueOnError,
		NoNetwork:       f.Network == sandbox.NetworkNone,
		Artifacts:       st.Artifacts,
		ArtifactsWhen:   first(st.ArtifactsWhen, "always"),
	}
	c.index++
	return s
}

// env is a step's environment: the workflow's env, the matrix values as
// MATRIX_<AXIS>, the step's env, then KOD_CPUS; a name set twice keeps the
// later value, in the place of the later one.
//
// A step that adds nothing to its workflow's env shares one slice (capacity
// clipped: appending copies) with the other such steps of its workflow
// instance.
func (c *compiler) env(wfEnv, m, stepEnv []workflow.EnvVar) []workflow.EnvVar {
	if len(stepEnv) == 0 && len(wfEnv) > 0 {
		if k := (envKey{&wfEnv[0], len(wfEnv), firstOf(m)}); c.sharedKey != k {
			c.sharedKey, c.shared = k, slices.Clip(c.buildEnv(wfEnv, m, nil))
		}
		return c.shared
	}
	return c.buildEnv(wfEnv, m, stepEnv)
}

func (c *compiler) buildEnv(wfEnv, m, stepEnv []workflow.EnvVar) []workflow.EnvVar {
	var all []workflow.EnvVar
	all = append(all, wfEnv...)
	for _, v := range m {
		all = append(all, workflow.EnvVar{Name: "MATRIX_" + v.Name, Value: v.Value})
	}
	all = append(all, stepEnv...)
	if n := c.d.Limits.NanoCPUs; n > 0 {
		all = append(all, workflow.EnvVar{Name: "KOD_CPUS", Value: strconv.FormatInt((n+1e9-1)/1e9, 10)})
	}
	return lastWins(all)
}

// lastWins drops every entry a later one with the same name replaces.
func lastWins(env []workflow.EnvVar) []workflow.EnvVar {
	last := make(map[string]int, len(env))
	for i, e := range env {
		last[e.Name] = i
	}
	out := make([]workflow.EnvVar, 0, len(last))
	for i, e := range env {
		if last[e.Name] == i {
			out = append(out, e)
		}
	}
	return out
}

func (c *compiler) service(f *workflow.Workflow, s workflow.Service, m []workflow.EnvVar) Service {
	return Service{
		Name:         s.Name,
		Image:        workflow.ExpandMatrix(s.Image, m),
		Pull:         pull(c.d.Pull, f.Pull, s.Pull),
		Env:          s.Env,
		Command:      s.Command,
		Ready:        s.Ready,
		ReadyTimeout: s.ReadyTimeout,
		Secrets:      s.Secrets,
		Limits:       c.d.Limits,
	}
}

// cache resolves a cache's path (absolute in the container) and key.
func (c *compiler) cache(f *workflow.Workflow, cc workflow.Cache) (Cache, error) {
	p := cc.Path
	if !path.IsAbs(p) {
		p = path.Join(sandbox.WorkspacePath, p)
	}
	parts := cc.Parts
	if parts == nil {
		var err error
		if parts, err = workflow.ParseCacheKey(cc.Key); err != nil {
			return Cache{}, &workflow.ParseError{File: f.File, Line: cc.Line, Msg: "cache key " + err.Error()}
		}
	}
	var key strings.Builder
	for _, part := range parts {
		switch {
		case part.Branch:
			key.WriteString(c.t.Branch)
		case part.Hash != nil:
			h, err := c.hash(f, cc, part.Hash)
			if err != nil {
				return Cache{}, err
			}
			key.WriteString(h)
		default:
			key.WriteString(part.Text)
		}
	}
	return Cache{Path: p, Key: key.String()}, nil
}

// HashLen is how many hex digits of the SHA-256 a {hash:...} placeholder
// keeps.
const HashLen = 16

// hash is {hash:FILES}: the SHA-256 of the files' bytes at the commit,
// concatenated in the order written (`cat A B | sha256sum`), first HashLen
// hex digits. A file the commit lacks is an error: a key that silently
// hashed nothing would share one cache across every lockfile.
func (c *compiler) hash(f *workflow.Workflow, cc workflow.Cache, files []string) (string, error) {
	h := sha256.New()
	for _, name := range files {
		data, ok := c.hashes[name]
		if !ok {
			if c.in.ReadFile == nil {
				return "", fmt.Errorf("%s:%d: cache key %q: cannot read %s: no file reader given", f.File, cc.Line, cc.Key, name)
			}
			var err error
			data, err = c.in.ReadFile(name)
			if errors.Is(err, fs.ErrNotExist) {
				return "", &workflow.ParseError{File: f.File, Line: cc.Line,
					Msg: fmt.Sprintf("cache key %q: file %s does not exist at commit %s", cc.Key, name, shortCommit(c.t.Commit))}
			}
			if err != nil {
				return "", fmt.Errorf("%s:%d: cache key %q: reading %s: %w", f.File, cc.Line, cc.Key, name, err)
			}
			c.hashes[name] = data
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:HashLen], nil
}

func shortCommit(c string) string { return c[:min(len(c), 12)] }

// pull is the most specific of the server's, the workflow's and the
// step's (or service's) pull policies.
func pull(server sandbox.PullPolicy, wf, own string) sandbox.PullPolicy {
	if p := first(own, wf); p != "" {
		return sandbox.PullPolicy(p)
	}
	return server
}

// first returns the first non-empty string.
func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Steps returns every step of the plan in plan order: Steps()[i].Index == i.
func (p *Plan) Steps() []*Step {
	var out []*Step
	for _, wf := range p.Workflows {
		out = append(out, wf.Steps...)
	}
	return out
}
