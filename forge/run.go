package forge

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
	// CurrentStep is the step executing now; absent when none is (queued,
	// between steps, finished). Steps enter Result.Steps when they end.
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
	// Reuse names the workflows (StepResult.Workflow values) of RerunOf
	// whose results this run takes as they were instead of running them
	// again (a failed-only re-run); their steps are marked reused.
	Reuse []string `json:"reuse,omitempty"`
}

// CurrentStep names the step a running run is executing. Index is the
// position its result will take in Result.Steps and the index of its log.
type CurrentStep struct {
	Index     int    `json:"index"`
	Name      string `json:"name"`
	Workflow  string `json:"workflow,omitempty"`
	StartedAt Millis `json:"startedAt"`
}

// Result is the outcome of a run so far: steps are appended as they end, and
// Success and Duration are final once the run is done.
type Result struct {
	Success  bool         `json:"success"`
	Duration int64        `json:"duration"` // ms
	Steps    []StepResult `json:"steps"`
}

// StepResult is one step's outcome. Output is the tail of the step's log
// (capped; the whole log is at GET .../workflows/:id/logs).
type StepResult struct {
	Name     string `json:"name"`
	Workflow string `json:"workflow,omitempty"` // file the step came from
	Success  bool   `json:"success"`
	Output   string `json:"output"`
	Error    string `json:"error,omitempty"`
	Duration int64  `json:"duration"` // ms
	Skipped  bool   `json:"skipped,omitempty"`
	ExitCode *int   `json:"exitCode,omitempty"`
	// Reused: the step did not run in this run; its result, log and
	// artifacts are those of the run this one re-runs (Run.RerunOf).
	Reused bool `json:"reused,omitempty"`
}
