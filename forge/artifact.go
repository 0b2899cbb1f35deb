package forge

import (
	"context"
	"strings"
)

// DefaultArtifactLimit is the bytes of artifacts one run may keep
// (KOD_ARTIFACT_LIMIT): 1 GiB.
const DefaultArtifactLimit int64 = 1 << 30

// Artifact is the record of one file a step kept from its workspace (Kod
// API: GET /repos/:name/workflows/:id/artifacts). Name is the file's path
// relative to the workspace, slash-separated; a directory (or a symbolic
// link) is kept as Name+".tar.gz". Size is bytes of the stored file; SHA256
// its hex digest; CreatedAt ms since the epoch.
type Artifact struct {
	RunID     string `json:"-"`
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Step      string `json:"step"`      // name of the step that produced it
	StepIndex int    `json:"stepIndex"` // its index in the run's steps
	SHA256    string `json:"sha256"`
	CreatedAt Millis `json:"createdAt"`
}

// ValidateArtifactName accepts the names artifacts are stored under: a
// relative slash-separated path without empty, "." or ".." components,
// NUL bytes or backslashes, at most 1024 bytes.
func ValidateArtifactName(name string) error {
	if name == "" || len(name) > 1024 || strings.ContainsAny(name, "\x00\\") || strings.HasPrefix(name, "/") {
		return Invalid("Invalid artifact name")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return Invalid("Invalid artifact name")
		}
	}
	return nil
}

// ArtifactStore keeps artifact records, keyed by run id and name. A run's
// records go with it (RunStore.DeleteRun, RepoStore.DeleteRepo). Errors wrap
// ErrNotFound ("Artifact not found").
type ArtifactStore interface {
	// PutArtifact creates or replaces the record of a's run and name;
	// ErrNotFound if the run does not exist.
	PutArtifact(ctx context.Context, a *Artifact) error
	// GetArtifact returns one record; ErrNotFound if none.
	GetArtifact(ctx context.Context, runID, name string) (*Artifact, error)
	// ListArtifacts returns the records of a run, sorted by name.
	ListArtifacts(ctx context.Context, runID string) ([]*Artifact, error)
}
