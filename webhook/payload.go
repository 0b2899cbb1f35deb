package webhook

import (
	"encoding/json"

	"github.com/kod-forge/kod/forge"
)

// pushBody is the body of a push delivery (Kod: {event, repo, branch,
// commit, workflowRunId}; before and deleted are additions so receivers can
// tell creations, updates and deletions apart).
type pushBody struct {
	Event         forge.WebhookEvent `json:"event"`
	Repo          string             `json:"repo"`
	Branch        string             `json:"branch"`
	Commit        string             `json:"commit"`
	WorkflowRunID *string            `json:"workflowRunId"`
	Before        string             `json:"before"`
	Deleted       bool               `json:"deleted,omitempty"`
}

// workflowBody is the body of a workflow delivery (Kod: {event, repo, id,
// branch, commit, status}).
type workflowBody struct {
	Event  forge.WebhookEvent `json:"event"`
	Repo   string             `json:"repo"`
	ID     string             `json:"id"`
	Branch string             `json:"branch"`
	Commit string             `json:"commit"`
	Status forge.RunStatus    `json:"status"`
}

// PushEvent is one branch of a push, as the post-receive hook saw it, with
// the run it queued ("" if none).
type PushEvent struct {
	Update forge.RefUpdate
	RunID  string
}

func pushPayload(repo, branch string, ev PushEvent) json.RawMessage {
	b := pushBody{Event: forge.EventPush, Repo: repo, Branch: branch, Commit: ev.Update.New, Before: ev.Update.Old, Deleted: ev.Update.IsDelete()}
	if ev.RunID != "" {
		b.WorkflowRunID = &ev.RunID
	}
	return mustJSON(b)
}

func workflowPayload(run *forge.Run) json.RawMessage {
	return mustJSON(workflowBody{Event: forge.EventWorkflow, Repo: run.RepoName, ID: run.ID, Branch: run.Branch, Commit: run.Commit, Status: run.Status})
}

func mustJSON(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		panic("webhook: encoding a payload: " + err.Error()) // plain structs of strings
	}
	return data
}
