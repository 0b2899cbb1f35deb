package forge

import "strings"

// RunStatus is the state of a workflow run (Kod: queued|running|completed|
// failed; cancelled is a deliberate addition).
type RunStatus string

const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Done reports whether s is a final state.
func (s RunStatus) Done() bool { return s == RunCompleted || s == RunFailed || s == RunCancelled }

// Trigger says what started a run.
type Trigger string

const (
	TriggerPush     Trigger = "push"
	TriggerManual   Trigger = "manual"
	TriggerSchedule Trigger = "schedule"
	TriggerRerun    Trigger = "rerun" // POST /repos/:name/workflows/:id/rerun
)

// Run is a workflow run record (Kod API: GET /repos/:name/workflows/:id).
// Times are ms since the epoch; durations are milliseconds.
type Run struct {
	ID string `json:"id"`
	// RepoID is the repository's stable id, what the store keys the run
	// by; RepoName is the repository's current name, filled by the store
	// when it reads the run (a rename never rewrites runs).
	RepoID      string    `json:"-"`
	RepoName    string    `json:"repoName"`
	Branch      string    `json:"branch"`
	Commit      string    `json:"commit"`
	Trigger     Trigger   `json:"trigger"`
	Status      RunStatus `json:"status"`
	CreatedAt   Millis    `json:"createdAt"`
	StartedAt   Millis    `json:"startedAt,omitempty"`
	CompletedAt Millis    `json:"completedAt,omitempty"`
	Result      *Result   `json:"result"`
	// Error says why a run failed as a whole (a workflow that does not parse,
	// a server restart, a workspace that could not be prepared).
	Error string `json:"error,omitempty"`
	// Files limits the run to these workflow files (manual trigger); empty
	// means every file of .kod/workflows.
	Files []string `json:"files,omitempty"`
	// CurrentStep is the most recently started step that is still
	// running; absent when none is (queued, finished). Kept for old
	// clients: Result.Steps[].Status says which steps run (several may).
	CurrentStep *CurrentStep `json:"currentStep,omitempty"`
	// QueuePosition is the 1-based position of a queued run in the global
	// queue; filled when runs are listed, never stored.
	QueuePosition int `json:"queuePosition,omitempty"`
	// Seq orders runs by creation; assigned by the store.
	Seq uint64 `json:"seq"`
	// TokenID is the token whose push or trigger created the run ("" for
	// schedules).
	TokenID string `json:"tokenId,omitempty"`
	// RerunOf is the run this one re-runs (trigger "rerun").
	RerunOf string `json:"rerunOf,omitempty"`
	// Reuse names the workflow instances (keys: the part of a step id
	// before its first '.') of RerunOf whose results this run takes as they
	// were instead of running them again (a failed-only re-run); their
	// steps are marked reused.
	Reuse []string `json:"reuse,omitempty"`
}

// CurrentStep names a step a running run is executing. Index is its
// position in Result.Steps and the index of its log.
type CurrentStep struct {
	Index     int    `json:"index"`
	Name      string `json:"name"`
	Workflow  string `json:"workflow,omitempty"`
	StartedAt Millis `json:"startedAt"`
}

// Result is the outcome of a run so far: from the moment the run starts,
// Steps lists every planned step in plan order (workflow instances in plan
// order, then steps in file order) with its status; Success and Duration
// are final once the run is done.
type Result struct {
	Success  bool         `json:"success"`
	Duration int64        `json:"duration"` // ms
	Steps    []StepResult `json:"steps"`
}

// StepStatus is the state of one planned step of a run.
type StepStatus string

const (
	StepPending   StepStatus = "pending"   // waiting for the steps it needs, or for a slot
	StepRunning   StepStatus = "running"   // its container runs
	StepCompleted StepStatus = "completed" // ran and succeeded
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"   // its `if` was false, or a step it needs failed
	StepCancelled StepStatus = "cancelled" // the run was cancelled (or the server restarted) before it ran
)

// Done reports whether s is a final state.
func (s StepStatus) Done() bool {
	return s == StepCompleted || s == StepFailed || s == StepSkipped || s == StepCancelled
}

// StepResult is one planned step: its identity and place in the graph,
// its state, and (once it ended) the Kod fields of its outcome. Output is
// the tail of the step's log (capped; the whole log is at GET
// .../workflows/:id/logs). Times are ms since the epoch; Duration is ms.
type StepResult struct {
	// ID is the step's id in the run's plan ("<workflow key>.<step slug>",
	// [a-z0-9.-]); empty in records written before per-step state.
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Workflow is the file the step came from, with the matrix values of
	// its instance: ".kod/workflows/ci.toml (GO=1.26, DB=pg)".
	Workflow    string     `json:"workflow,omitempty"`
	Needs       []string   `json:"needs,omitempty"` // ids of the steps it waits for
	Status      StepStatus `json:"status,omitempty"`
	StartedAt   Millis     `json:"startedAt,omitempty"`
	CompletedAt Millis     `json:"completedAt,omitempty"`
	Success     bool       `json:"success"`
	Output      string     `json:"output"`
	// Error says why the step failed, or why it was skipped or cancelled
	// ("needs 'build', which failed").
	Error    string `json:"error,omitempty"`
	Duration int64  `json:"duration"` // ms
	Skipped  bool   `json:"skipped,omitempty"`
	ExitCode *int   `json:"exitCode,omitempty"`
	// Reused: the step did not run in this run; its result, log and
	// artifacts are those of the run this one re-runs (Run.RerunOf).
	Reused bool `json:"reused,omitempty"`
}

// File is the workflow file of the step: Workflow without the matrix
// values of its instance (".kod/workflows/ci.toml (GO=1.26)" ->
// ".kod/workflows/ci.toml").
func (s StepResult) File() string {
	if i := strings.LastIndex(s.Workflow, ".toml ("); i >= 0 && strings.HasSuffix(s.Workflow, ")") {
		return s.Workflow[:i+len(".toml")]
	}
	return s.Workflow
}

// Ran reports whether the step started (a skipped step counts as run: it
// is done; one cancelled or pending before it started is not).
func (s StepResult) Ran() bool {
	return s.StartedAt != 0 || s.Skipped || s.Status == "" || s.Status == StepCompleted || s.Status == StepFailed
}

// UpgradeSteps fills the Status of step results stored before per-step
// state (they held only steps that had ended): skipped, completed or
// failed from Skipped and Success. Records with statuses are unchanged.
func (r *Run) UpgradeSteps() {
	if r.Result == nil {
		return
	}
	for i := range r.Result.Steps {
		st := &r.Result.Steps[i]
		if st.Status != "" {
			continue
		}
		switch {
		case st.Skipped:
			st.Status = StepSkipped
		case st.Success:
			st.Status = StepCompleted
		default:
			st.Status = StepFailed
		}
	}
}
