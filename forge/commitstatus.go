package forge

import (
	"slices"
	"sort"
)

// CommitState is the combined state of the runs of one commit (GET
// /repos/:name/commits/:sha/status) or of a branch's latest run (badges).
type CommitState string

const (
	StateSuccess CommitState = "success" // every workflow file's newest run passed it
	StateFailure CommitState = "failure" // some file's newest run failed or was cancelled
	StatePending CommitState = "pending" // none failed, some file's newest run is queued or running
	StateNone    CommitState = "none"    // no run
)

// FileState is the state run gives workflow file: pending while the run
// is not done; success when the run completed, or when it failed but the
// file's own steps all passed (other files failed it) and the run has no
// error of its own; failure otherwise (cancelled included: the commit was
// not verified).
func FileState(run *Run, file string) CommitState {
	switch {
	case !run.Status.Done():
		return StatePending
	case run.Status == RunCompleted:
		return StateSuccess
	case run.Status == RunCancelled || run.Error != "" || run.Result == nil:
		return StateFailure
	}
	seen := false
	for _, st := range run.Result.Steps {
		if st.File() != file {
			continue
		}
		seen = true
		if !st.Success && !st.Skipped {
			return StateFailure
		}
	}
	if !seen {
		return StateFailure
	}
	return StateSuccess
}

// RunFiles is the workflow files run covers: its Files when it was limited
// to some (manual trigger), else every file of the commit (all) plus any
// its step results name.
func RunFiles(run *Run, all []string) []string {
	if len(run.Files) > 0 {
		return slices.Clone(run.Files)
	}
	files := slices.Clone(all)
	if run.Result != nil {
		for _, st := range run.Result.Steps {
			if f := st.File(); f != "" && !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
	}
	sort.Strings(files)
	return files
}

// CombineCommitRuns picks, for every workflow file, the newest (highest
// Seq) of runs covering it, and combines their FileStates: failure if
// any, else pending if any, else success; none without runs. runs are the
// runs of one commit; all is the workflow files at that commit. It returns
// the state, the picked runs (newest first, each once) and the files each
// picked run decides.
func CombineCommitRuns(runs []*Run, all []string) (CommitState, []*Run, map[string][]string) {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *Run) int { return compareSeq(b.Seq, a.Seq) })
	decided := map[string]*Run{} // file -> newest run covering it
	var files []string
	for _, r := range sorted {
		for _, f := range RunFiles(r, all) {
			if _, ok := decided[f]; !ok {
				decided[f] = r
				files = append(files, f)
			}
		}
	}
	if len(decided) == 0 {
		return StateNone, nil, nil
	}
	sort.Strings(files)
	state := StateSuccess
	byRun := map[string][]string{}
	for _, f := range files {
		r := decided[f]
		byRun[r.ID] = append(byRun[r.ID], f)
		switch FileState(r, f) {
		case StateFailure:
			state = StateFailure
		case StatePending:
			if state != StateFailure {
				state = StatePending
			}
		}
	}
	var picked []*Run
	for _, r := range sorted {
		if _, ok := byRun[r.ID]; ok {
			picked = append(picked, r)
		}
	}
	return state, picked, byRun
}

// RunState is a single run's state, for a branch badge: pending while it
// is not done, success when it completed, failure otherwise.
func RunState(run *Run) CommitState {
	switch {
	case run == nil:
		return StateNone
	case !run.Status.Done():
		return StatePending
	case run.Status == RunCompleted:
		return StateSuccess
	}
	return StateFailure
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
