package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/kod-forge/kod/sandbox"
)

// labelRole marks what a container is for; steps have no role label.
const labelRole = "dev.kod.role"

// LoadWorkspace extracts the tar stream (entries relative to the workspace
// root) into the run's workspace volume. The engine can only copy into containers, so a carrier
// container is created from image (pulled if not present, never started)
// with the volume mounted at sandbox.WorkspacePath, the stream is sent to it
// as it is read, and the carrier is removed, even when ctx is cancelled.
// Existing files in the workspace are overwritten.
func (d *Docker) LoadWorkspace(ctx context.Context, run *sandbox.RunSpec, image string, tar io.Reader) (err error) {
	if err := checkRun(run); err != nil {
		return err
	}
	if err := d.ensureImage(ctx, image, sandbox.PullIfNotPresent); err != nil {
		return fmt.Errorf("docker: load workspace of run %s: %w", run.ID, err)
	}
	labels := runLabels(run)
	labels[labelRole] = "workspace-carrier"
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	created, err := d.cli.ContainerCreate(cctx,
		&container.Config{
			Image:  image,
			Labels: labels,
			// Never run; set so images without CMD/ENTRYPOINT are accepted.
			Cmd:             []string{"/kod-workspace-carrier"},
			NetworkDisabled: true,
		},
		&container.HostConfig{
			NetworkMode: "none",
			LogConfig:   container.LogConfig{Type: "none"},
			Mounts:      []mount.Mount{workspaceMount(run)},
		},
		nil, nil, "")
	if err != nil {
		return engineErr("create workspace carrier for run "+run.ID, err)
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		err = errors.Join(err, d.removeContainer(cctx, created.ID))
	}()
	src := &readErrs{r: tar}
	err = d.cli.CopyToContainer(ctx, created.ID, sandbox.WorkspacePath, src, container.CopyToContainerOptions{})
	if rerr := src.failed(); rerr != nil {
		// The tar's producer failed (git refusing a tree, a broken upload):
		// that is the cause, not the engine the request body stopped for.
		return fmt.Errorf("docker: load workspace of run %s: reading the workspace: %w", run.ID, rerr)
	}
	if err != nil {
		return engineErr("copy workspace into run "+run.ID, err)
	}
	return nil
}

// readErrs is a reader that keeps the first error of r other than io.EOF
// (read by the HTTP transport's goroutine).
type readErrs struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *readErrs) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
	return n, err
}

func (e *readErrs) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// workspaceMount mounts the run's volume at sandbox.WorkspacePath. NoCopy
// keeps the engine from seeding an empty volume with whatever the image has
// at that path; the labels apply if the engine has to create the volume
// (SetupRun skipped or raced with DestroyRun), so Sweep still finds it.
func workspaceMount(run *sandbox.RunSpec) mount.Mount {
	return mount.Mount{
		Type:   mount.TypeVolume,
		Source: volumeName(run),
		Target: sandbox.WorkspacePath,
		VolumeOptions: &mount.VolumeOptions{
			NoCopy: true,
			Labels: runLabels(run),
		},
	}
}
