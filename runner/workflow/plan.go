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
}

// Condition is a parsed `if` expression: one of `branch == 'v'`,
// `branch != 'v'`, `env.X == 'v'`, `env.X != 'v'` (Kod's four forms).
type Condition struct {
	Source string // the expression as written
	Var    string // "branch" or "env.NAME"
	Negate bool   // true for !=
	Value  string
}
