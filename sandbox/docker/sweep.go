package docker

import (
	"context"
	"errors"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/kod-forge/kod/sandbox"
)

// Sweep removes every container, network and volume labelled with instance
// (sandbox.LabelInstance) whose run id (sandbox.LabelRun) keep does not
// keep, in that order so volumes and networks are no longer in use when they
// go. It returns the sorted, distinct run ids it removed objects of (also
// when some removals failed; their errors are joined). instance must not be
// empty: that would match objects of every instance without the label.
func (d *Docker) Sweep(ctx context.Context, instance string, keep func(runID string) bool) ([]string, error) {
	if instance == "" {
		return nil, errors.New("docker: Sweep needs an instance id")
	}
	f := filters.NewArgs(
		filters.Arg("label", sandbox.LabelManaged+"=true"),
		filters.Arg("label", sandbox.LabelInstance+"="+instance),
	)
	var (
		removed = map[string]bool{}
		errs    []error
	)
	// gone records the outcome of one removal.
	gone := func(runID string, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		removed[runID] = true
	}

	containers, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, engineErr("list containers to sweep", err)
	}
	for _, c := range containers {
		if runID := c.Labels[sandbox.LabelRun]; !keep(runID) {
			d.forgetRun(runID)
			d.forgetHolders(runID)
			gone(runID, d.removeContainer(ctx, c.ID))
		}
	}

	networks, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, engineErr("list networks to sweep", err))
	}
	for _, n := range networks {
		if runID := n.Labels[sandbox.LabelRun]; !keep(runID) {
			err := d.cli.NetworkRemove(ctx, n.ID)
			if err != nil && !cerrdefs.IsNotFound(err) {
				err = engineErr("remove network "+n.Name, err)
			} else {
				err = nil
			}
			gone(runID, err)
		}
	}

	volumes, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, engineErr("list volumes to sweep", err))
	}
	for _, v := range volumes.Volumes {
		if runID := v.Labels[sandbox.LabelRun]; !keep(runID) {
			err := d.cli.VolumeRemove(ctx, v.Name, false)
			if err != nil && !cerrdefs.IsNotFound(err) {
				err = engineErr("remove volume "+v.Name, err)
			} else {
				err = nil
			}
			gone(runID, err)
		}
	}

	ids := make([]string, 0, len(removed))
	for id := range removed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, errors.Join(errs...)
}

// Instances returns the distinct instance ids (sandbox.LabelInstance) of
// every container, network and volume kod manages on this engine, sorted;
// objects without one are skipped.
func (d *Docker) Instances(ctx context.Context) ([]string, error) {
	f := filters.NewArgs(filters.Arg("label", sandbox.LabelManaged+"=true"))
	seen := map[string]bool{}
	containers, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, engineErr("list containers", err)
	}
	for _, c := range containers {
		seen[c.Labels[sandbox.LabelInstance]] = true
	}
	networks, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, engineErr("list networks", err)
	}
	for _, n := range networks {
		seen[n.Labels[sandbox.LabelInstance]] = true
	}
	volumes, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, engineErr("list volumes", err)
	}
	for _, v := range volumes.Volumes {
		seen[v.Labels[sandbox.LabelInstance]] = true
	}
	delete(seen, "")
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}
