// Package plan is the compiled, backend-neutral form of a run: what the
// engine (runner/engine) executes. Compile turns parsed workflow files plus
// the trigger and the server's defaults into a Plan; nothing in a Plan
// refers to the store, the queue or a container engine.
package plan

import (
	"strings"
	"time"

	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
)

// Trigger is what a run was started for: the inputs of Compile that do not
// come from the workflow files.
type Trigger struct {
	RunID   string   // run id, [a-z0-9]
	Repo    string   // repository name (KOD_REPO)
	Branch  string   // branch (KOD_BRANCH)
	Commit  string   // full commit id (KOD_COMMIT)
	Event   string   // "push", "manual", "schedule" or "rerun"
	Secrets []string // names of the repository's secrets (values are added at execution)
}

// Defaults are the server's settings a workflow file may override.
type Defaults struct {
	Image      string             // image of steps that name none (KOD_DEFAULT_IMAGE)
	Pull       sandbox.PullPolicy // the server's pull policy
	Limits     sandbox.Limits     // per step container
	CloneDepth int                // commits of history in the workspace; 0 = full (KOD_CLONE_DEPTH)
	// MaxSteps bounds the steps of a plan over all its workflow instances
	// (a matrix multiplies them); 0 = no bound. The runner passes
	// runner.MaxRunSteps.
	MaxSteps int
}

// Plan is a compiled run: its workflows in plan order (file order, then
// matrix combination order). Workflows run in parallel, each in its own
// workspace and network.
type Plan struct {
	Trigger   Trigger
	Workflows []*Workflow
}

// Workflow is one workflow instance: a file, or one matrix combination of it.
type Workflow struct {
	// Key identifies the instance within the plan and names its workspace:
	// [a-z0-9-], at most 40 bytes, unique in the plan, stable for the same
	// files (e.g. "ci", "ci-go-1-26-db-pg").
	Key    string
	File   string            // path relative to the repository root
	Label  string            // for people: the file name, or "ci.toml (GO=1.26, DB=pg)"
	Matrix []workflow.EnvVar // this instance's matrix values in axis order; nil without a matrix
	Format workflow.Format
	// Timeout bounds the whole workflow instance.
	Timeout  time.Duration
	Network  string // sandbox.NetworkBridge or sandbox.NetworkNone
	FailFast bool   // a failed step cancels the other instances of the same file
	// CloneDepth is the history depth of the workspace checkout, commits;
	// 0 = full.
	CloneDepth int
	Services   []Service
	Caches     []Cache
	Steps      []*Step // in file order
}

// Step is one step with everything resolved that can be resolved before the
// run starts. Legacy (Kod-syntax) steps keep their exports and placeholders,
// which depend on the steps before them and are resolved by the engine.
type Step struct {
	// Index is the step's position in the whole plan, 0-based (workflows
	// in plan order, then steps in file order). It names the step's log
	// file and container and is its position in the run record's steps.
	Index int
	// ID is stable for the same files: "<workflow key>.<step slug>",
	// unique in the plan, [a-z0-9.-].
	ID       string
	Name     string    // as written; matrix placeholders replaced
	Workflow *Workflow `json:"-"` // the instance the step belongs to (left out of JSON: it points back)
	Line     int       // line of the step's header in its file
	// Needs are the IDs of the steps this one waits for. A step without
	// `needs` in its file needs the step written before it; `needs = []`
	// gives none.
	Needs []string
	Image string // resolved: step, workflow, then the server's default
	Pull  sandbox.PullPolicy
	Shell string // "sh" (default), "bash" or a path; see ShellCommand
	// Script is the script to run. For legacy steps it still holds
	// {placeholders} (Interpolate) and exports are in Exports.
	Script          string
	Interpolate     bool
	Exports         []workflow.EnvVar
	If              *workflow.Condition // nil = always; evaluated when the step is ready
	Env             []workflow.EnvVar   // workflow env, matrix (MATRIX_*), then step env; later wins
	WorkDir         string              // absolute, under sandbox.WorkspacePath
	Limits          sandbox.Limits
	Timeout         time.Duration // 0 = only the workflow's timeout
	ContinueOnError bool
	NoNetwork       bool
	Artifacts       []string // glob patterns relative to the workspace
	ArtifactsWhen   string   // "always" (default), "success" or "failure"
}

// Service is a container started beside a workflow's steps, reachable from
// them by Name.
type Service struct {
	Name         string // hostname: [a-z0-9-], unique in the workflow
	Image        string
	Pull         sandbox.PullPolicy
	Env          []workflow.EnvVar
	Command      []string      // nil = the image's own
	Ready        string        // shell command run inside the service until it exits 0; "" = started is ready
	ReadyTimeout time.Duration // default 60 s
	Secrets      []string      // names of repository secrets given to the service
	Limits       sandbox.Limits
}

// Cache is a directory kept between runs of the same repository and branch.
type Cache struct {
	Path string // absolute path in the step containers
	// Key is the resolved key: {hash:FILES} and {branch} already replaced.
	Key string
}

// FileLabel is what run records and logs call the instance: its file path,
// with the instance's matrix values, e.g. ".kod/workflows/ci.toml (GO=1.26,
// DB=pg)"; just the path without a matrix.
func (wf *Workflow) FileLabel() string {
	if len(wf.Matrix) == 0 {
		return wf.File
	}
	parts := make([]string, len(wf.Matrix))
	for i, m := range wf.Matrix {
		parts[i] = m.Name + "=" + m.Value
	}
	return wf.File + " (" + strings.Join(parts, ", ") + ")"
}
