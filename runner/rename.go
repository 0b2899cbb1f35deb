package runner

import "context"

// currentRepo returns the name the run's repository has now and records it
// in x.run. A repository renamed after the run was claimed has moved the
// run record with it (the store's rename cascade), so the executing run
// reads the repository under its new name. If the record cannot be read,
// the name the run started with is kept.
func (x *execution) currentRepo(ctx context.Context) string {
	if cur, err := x.r.store.GetRun(ctx, x.run.ID); err == nil && cur.RepoName != "" {
		x.run.RepoName = cur.RepoName
	}
	return x.run.RepoName
}
