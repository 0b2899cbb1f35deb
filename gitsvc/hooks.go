package gitsvc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HookNames are the server-side hooks kod installs in every repository.
var HookNames = []string{"pre-receive", "post-receive"}

// Environment variables through which the server hands a push's hook
// credential to `kod hook` (via git receive-pack, which passes its
// environment on to hooks).
const (
	EnvHookSocket = "KOD_HOOK_SOCKET" // path of the server's unix socket
	EnvHookToken  = "KOD_HOOK_TOKEN"  // per-push credential, valid while the push runs
)

// InstallHooks writes the pre-receive and post-receive hooks of the bare
// repository at repoDir so that they run `<binary> hook <name>`. It is
// idempotent and rewrites hooks that point at an older binary path.
func InstallHooks(repoDir, binary string) error {
	dir := filepath.Join(repoDir, "hooks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range HookNames {
		script := fmt.Sprintf("#!/bin/sh\n# Installed by kod; rewritten on every server start. Do not edit.\nexec %s hook %s\n", shellQuote(binary), name)
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && string(old) == script {
			continue
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			return fmt.Errorf("writing %s hook: %w", name, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("installing %s hook: %w", name, err)
		}
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// RemoveStaleQuarantines removes the object quarantine directories
// (objects/tmp_objdir-incoming-*) that git receive-pack leaves behind when
// it is killed mid-push, if they are older than age. Pushes only run as
// children of the server, so at start-up any such directory older than a
// few minutes belongs to a push that can no longer finish.
func RemoveStaleQuarantines(repoDir string, age time.Duration) error {
	dirs, err := filepath.Glob(filepath.Join(repoDir, "objects", "tmp_objdir-incoming-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		st, err := os.Lstat(d)
		if err != nil || !st.IsDir() || time.Since(st.ModTime()) < age {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
