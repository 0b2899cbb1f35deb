package sandbox

import "fmt"

// MaxWorkspaceLen is the longest RunSpec.Workspace, bytes.
const MaxWorkspaceLen = 40

// CheckWorkspace validates a RunSpec.Workspace: "" (a run with one
// workspace) or 1 to MaxWorkspaceLen characters of [a-z0-9-] starting and
// ending with [a-z0-9], so it fits object names and label values of every
// backend. The error names the rule broken.
func CheckWorkspace(ws string) error {
	if ws == "" {
		return nil
	}
	if len(ws) > MaxWorkspaceLen {
		return fmt.Errorf("workspace %q longer than %d characters", ws, MaxWorkspaceLen)
	}
	for i := 0; i < len(ws); i++ {
		c := ws[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(ws)-1) {
			return fmt.Errorf("workspace %q: only [a-z0-9-] allowed, starting and ending with [a-z0-9]", ws)
		}
	}
	return nil
}

// WorkspaceEnv is the environment every backend puts before a step's own
// (StepSpec.Env wins): git in the step trusts the workspace checkout
// whatever user the step runs as. The workspace is written by root, and
// git (2.35.2 and later) refuses a repository owned by another user unless
// safe.directory allows it; GIT_CONFIG_COUNT entries count as command-line
// configuration, the only kind besides the system and global files (which
// kod cannot write into arbitrary images) that git reads safe.directory
// from.
var WorkspaceEnv = []string{
	"GIT_CONFIG_COUNT=1",
	"GIT_CONFIG_KEY_0=safe.directory",
	"GIT_CONFIG_VALUE_0=" + WorkspacePath,
}
