package docker

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/kod-forge/kod/sandbox"
)

// SetupRun creates the workspace volume (kod-<key>-ws, see the package
// doc) and, unless run.Network is sandbox.NetworkNone, its bridge network
// (kod-<key>). Both are labelled with the run and its workspace. When ctx ends during a create, the create
// still completes (see createContext) and SetupRun returns ctx.Err(), so a
// DestroyRun after it finds every object. Objects left by an earlier attempt for the same
// run are reused, so a retry after a partial failure succeeds.
func (d *Docker) SetupRun(ctx context.Context, run *sandbox.RunSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	labels := runLabels(run)
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	// Creating a named volume that exists returns the existing one.
	_, err = d.cli.VolumeCreate(cctx, volume.CreateOptions{
		Name:   volumeName(run),
		Driver: "local",
		Labels: labels,
	})
	if err != nil {
		return engineErr("create volume "+volumeName(run), err)
	}
	if run.Network == sandbox.NetworkNone {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err // the volume exists; DestroyRun removes it
	}
	// The client asks engines older than API 1.44 to check duplicates, so
	// a second create of the same name is a conflict, not a twin network.
	_, err = d.cli.NetworkCreate(cctx, networkName(run), network.CreateOptions{
		Driver: "bridge",
		Labels: labels,
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return engineErr("create network "+networkName(run), err)
	}
	return ctx.Err()
}

// DestroyRun removes every container labelled with the run and its
// workspace (step containers and workspace carriers, killing them if
// running), then the workspace's network, then its volume; the other
// workspaces of the run stay (a container without the workspace label
// belongs to workspace ""). Missing objects are not errors, so it is
// idempotent and safe after a SetupRun that failed half-way; the failures of
// the removals that did fail are joined.
func (d *Docker) DestroyRun(ctx context.Context, run *sandbox.RunSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	d.forgetWorkspace(run)
	f := filters.NewArgs(
		filters.Arg("label", sandbox.LabelManaged+"=true"),
		filters.Arg("label", sandbox.LabelRun+"="+run.ID),
	)
	if run.Instance != "" {
		f.Add("label", sandbox.LabelInstance+"="+run.Instance)
	}
	if run.Workspace != "" {
		f.Add("label", sandbox.LabelWorkspace+"="+run.Workspace)
	}
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		// Without the list the volume is likely still in use; stop here.
		return engineErr("list containers of run "+run.ID, err)
	}
	var errs []error
	for _, c := range list {
		if c.Labels[sandbox.LabelWorkspace] != run.Workspace {
			continue
		}
		errs = append(errs, d.removeContainer(ctx, c.ID))
	}
	// Run networks exist only in bridge mode, but a run may have been set up
	// with another mode before a retry; removing by name covers both.
	if err := d.cli.NetworkRemove(ctx, networkName(run)); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, engineErr("remove network "+networkName(run), err))
	}
	if err := d.cli.VolumeRemove(ctx, volumeName(run), false); err != nil && !cerrdefs.IsNotFound(err) {
		errs = append(errs, engineErr("remove volume "+volumeName(run), err))
	}
	return errors.Join(errs...)
}

// removeContainer force-removes a container (killing it if running) but not
// the named volumes it mounts. A missing container is not an error.
func (d *Docker) removeContainer(ctx context.Context, id string) error {
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: false})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	if cerrdefs.IsConflict(err) {
		// "removal already in progress": another caller is removing it.
		return nil
	}
	return engineErr(fmt.Sprintf("remove container %.12s", id), err)
}
