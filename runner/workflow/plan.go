// Package workflow parses workflow files (.kod/workflows/*.toml) into a
// backend-neutral plan. Two formats are accepted: real TOML (the documented
// format) and Kod's line syntax (`timeout: 120`, `[step:NAME]`, `run:`
// blocks), which existing Kod users still have in their repositories.
package workflow

import "time"

// Dir is the directory, relative to the repository root, holding workflow files.
const Dir = ".kod/workflows"

// DefaultTimeout is the whole-workflow time limit when a file names none
// (Kod: 300 s).
const DefaultTimeout = 300 * time.Second

// Format names the syntax a file was written in.
type Format string

const (
	FormatTOML   Format = "toml"   // BurntSushi/toml, see the README
	FormatLegacy Format = "legacy" // Kod's line syntax
)

// Workflow is one parsed workflow file.
type Workflow struct {
	File    string        // path relative to the repository root, e.g. ".kod/workflows/ci.toml"
	Format  Format        // which syntax the file used
	Timeout time.Duration // limit for the whole workflow; DefaultTimeout if the file names none
	Image   string        // default image of every step; "" means the server's default image
	Pull    string        // pull policy of its steps (PullPolicies); "" means the server's
	Network string        // "" (a dedicated network per run) or "none"
	Env     []EnvVar      // workflow-level environment (TOML [env]), sorted by name
	On      Triggers      // which events start the workflow
	Steps   []Step

	// The pipeline keys (TOML only; see docs/workflows.md). They are left
	// out of JSON when unset, so the shape of older workflows is unchanged.

	// Matrix expands the file into one workflow instance per combination
	// of its axes; nil without a [matrix] table.
	Matrix *Matrix `json:",omitempty"`
	// FailFast: a failed step cancels the other matrix instances of the file.
	FailFast bool `json:",omitempty"`
	// Shell runs the scripts of steps that name none: "" (sh), a shell name
	// ("bash") or an absolute path.
	Shell string `json:",omitempty"`
	// Clone is the checkout setting (`clone = { depth = N }`); nil = the
	// server's.
	Clone    *Clone    `json:",omitempty"`
	Services []Service `json:",omitempty"`
	Caches   []Cache   `json:",omitempty"`
}

// Clone is how the workspace is checked out.
type Clone struct {
	Depth int // commits of history; 0 = full
}

// Matrix is a workflow's [matrix] table.
type Matrix struct {
	Axes []MatrixAxis // in the order written in the file
	// Exclude lists combinations left out: each maps axis names to values,
	// and drops every combination that has all of them.
	Exclude []map[string]string `json:",omitempty"`
}

// MatrixAxis is one axis of a matrix: its name (an env name part) and its
// values, as text, in the order written.
type MatrixAxis struct {
	Name   string
	Values []string
}

// Service is a [[services]] entry: a container started beside the steps of
// the workflow, reachable from them by Name on the workflow's network.
type Service struct {
	Name         string        // hostname: [a-z0-9-], unique in the workflow
	Line         int           // line of its [[services]] header
	Image        string        // required; may hold {matrix.AXIS}
	Pull         string        // PullPolicies value; "" = the workflow's
	Env          []EnvVar      // sorted by name
	Command      []string      // nil = the image's own command
	Ready        string        // shell command run inside the service until it exits 0; "" = started is ready
	ReadyTimeout time.Duration // DefaultReadyTimeout unless set (1 s to MaxReadyTimeout)
	Secrets      []string      // names of repository secrets given to the service
}

// Cache is a [[caches]] entry: a directory kept between runs.
type Cache struct {
	Line int // line of its [[caches]] header
	// Path is cleaned: absolute, or relative to the workspace (never
	// leaving it).
	Path  string
	Key   string    // as written, e.g. "go-{hash:go.sum}"
	Parts []KeyPart `json:"-"` // Key parsed; see ParseCacheKey
}

// Triggers limits which events start a workflow. The zero value means Kod's
// behaviour: every push of any branch, no schedule.
type Triggers struct {
	Push     []string // branch glob patterns ("main", "release/*"); empty = every branch
	Schedule []string // cron expressions (5 fields), run on the default branch
	Set      bool     // the file had an [on] table; Push empty with Set true means "no push trigger"
}

// EnvVar is one NAME=value pair.
type EnvVar struct {
	Name  string
	Value string
}

// Step is one step of a workflow: Run executed with `sh -e -c` in its own
// container.
type Step struct {
	Name            string
	Line            int           // 1-based line of the step's header in the file, for error messages
	Run             string        // shell script; for legacy steps, env directives already turned into exports; run Script(vars), not Run
	Image           string        // "" means the workflow's image
	Pull            string        // pull policy (PullPolicies); "" means the workflow's
	If              *Condition    // nil means always
	WorkingDir      string        // relative to the workspace, cleaned, never escaping it; "" = workspace root
	ContinueOnError bool          // a failure is recorded and the run goes on
	Timeout         time.Duration // 0 means only the workflow's timeout applies
	Env             []EnvVar      // step environment (TOML only), sorted by name
	// Exports are the legacy `env.NAME = "v"` directives of Run, in order.
	// When the step runs, they also apply to every later step of the workflow.
	// Values may hold {placeholders} (see Expand).
	Exports []EnvVar
	// Interpolate is true for legacy steps: {branch}, {repo} and {env.NAME}
	// in Run (and export values) are replaced before the step runs.
	Interpolate bool

	// Needs names the steps of the same workflow this one waits for, as
	// written. Only meaningful with NeedsSet: a step without `needs`
	// (NeedsSet false) waits for the step written before it, and
	// `needs = []` (NeedsSet true, Needs empty) for none.
	Needs    []string `json:",omitempty"`
	NeedsSet bool     `json:",omitempty"`
	// Shell runs the script: "" (the workflow's), a shell name or an
	// absolute path.
	Shell string `json:",omitempty"`
	// Artifacts are glob patterns relative to the workspace; a trailing /
	// names a directory.
	Artifacts []string `json:",omitempty"`
	// ArtifactsWhen is "", "always", "success" or "failure"; "" = always.
	ArtifactsWhen string `json:",omitempty"`
}

// Condition is a parsed `if` expression: one of `branch == 'v'`,
// `branch != 'v'`, `env.X == 'v'`, `env.X != 'v'` (Kod's four forms).
type Condition struct {
	Source string // the expression as written
	Var    string // "branch" or "env.NAME"
	Negate bool   // true for !=
	Value  string
}
