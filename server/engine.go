package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/sandbox/docker"
)

// checkEngine logs, without failing start-up, what would make runs fail.
func checkEngine(ctx context.Context, d *docker.Docker, image string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	version, err := d.Ping(ctx)
	if err != nil {
		log.Error("the Docker engine is unreachable: workflow runs will fail until it is back", "err", err)
		return
	}
	ok, err := d.ImagePresent(ctx, image)
	switch {
	case err != nil:
		log.Error("checking the default image", "image", image, "err", err)
	case !ok && image == config.DefaultImage:
		log.Warn("the default step image is missing: build it with scripts/build-images", "image", image)
	case !ok:
		log.Warn("the default step image is not present; the engine will pull it on first use", "image", image)
	}
	log.Info("Docker engine reachable", "api", version)
}

// executablePath is the absolute path of this binary, which git hooks run.
func executablePath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the kod binary for git hooks: %w", err)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p, nil
}

// reinstallHooks points every repository's hooks at this binary (it may
// have moved since they were written) and removes the quarantine of pushes
// that a crash interrupted.
func reinstallHooks(ctx context.Context, store *boltstore.Store, reposDir, binary string) error {
	repos, err := store.ListRepos(ctx)
	if err != nil {
		return err
	}
	for _, r := range repos {
		dir, err := gitsvc.RepoPath(reposDir, r.Name)
		if err != nil {
			return err
		}
		if _, err := os.Stat(dir); err != nil {
			continue // reported when used
		}
		if err := gitsvc.InstallHooks(dir, binary); err != nil {
			return fmt.Errorf("installing hooks of %s: %w", r.Name, err)
		}
		if err := gitsvc.RemoveStaleQuarantines(dir, 10*time.Minute); err != nil {
			return fmt.Errorf("cleaning %s: %w", r.Name, err)
		}
	}
	return nil
}
