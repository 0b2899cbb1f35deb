package runner

import "context"

// currentRepo returns the name the run's repository has now and records it
// in x.run. Runs refer to their repository by id and the store fills in
// the current name when it reads one, so a run whose repository was
// renamed after it was claimed reads the repository under its new name.
// If the record cannot be read, the name the run started with is kept.
// Workflow instances load their workspaces at once: repoMu orders them.
func (x *execution) currentRepo(ctx context.Context) string {
	cur, err := x.r.store.GetRun(ctx, x.run.ID)
	x.repoMu.Lock()
	defer x.repoMu.Unlock()
	if err == nil && cur.RepoName != "" {
		x.run.RepoName = cur.RepoName
	}
	return x.run.RepoName
}
