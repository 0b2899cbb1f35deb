package docker

import (
	"context"

	"github.com/docker/docker/api/types/container"

	"github.com/kod-forge/kod/sandbox"
)

// A workspace network's holder is a container (kod-<key>-net, role
// "network-holder") that does nothing but keep a network namespace on the
// workspace's network. Joining an existing namespace (network mode
// container:<holder>) spares a step container the endpoint the engine
// otherwise creates and wires at every start (a veth pair, addresses, the
// embedded DNS rules): about 0.2 s of each start on a loaded 2-core host,
// more than everything else kod adds to a step.
//
// One step at a time uses it (a lease from create to exit): a step that
// starts while another step of its workspace holds the lease gets its own
// endpoint as before, so steps running at the same time never share
// localhost or ports. Steps that run one after another see the same
// address and hostname. The holder is started in the background by
// SetupRun, unless the workspace is planned to run one step
// (RunSpec.Steps); until it is up, or when it cannot start
// (Config.NetworkHolderImage empty, not present, or without `sleep`),
// steps get their own endpoint.
type netHolder struct {
	ready chan struct{} // closed once the start attempt ended
	id    string        // the running holder; "" if it did not start
	lease string        // stepKey of the step in its namespace; "" = free
}

// holderName is the holder's container name: no step name ends in "-net".
func holderName(run *sandbox.RunSpec) string { return "kod-" + wsKey(run) + "-net" }

// startHolder starts the holder of run's workspace network in the
// background; DestroyRun waits for the attempt to end before it lists the
// workspace's containers, so the holder never outlives its workspace.
func (d *Docker) startHolder(ctx context.Context, run *sandbox.RunSpec) {
	if d.cfg.NetworkHolderImage == "" || run.Network == sandbox.NetworkNone || run.Steps == 1 {
		return // nothing to share: a single step wires its own endpoint
	}
	h := &netHolder{ready: make(chan struct{})}
	key := wsKey(run)
	d.mu.Lock()
	if d.closed || d.holders[key] != nil {
		d.mu.Unlock()
		return
	}
	d.holders[key] = h
	d.wg.Add(1)
	d.mu.Unlock()
	spec := *run
	go func() {
		defer d.wg.Done()
		defer close(h.ready)
		id := d.runHolder(context.WithoutCancel(ctx), &spec)
		d.mu.Lock()
		h.id = id
		d.mu.Unlock()
	}()
}

// runHolder creates and starts the holder and returns its id, or "" when
// it could not (then nothing of it is left).
func (d *Docker) runHolder(ctx context.Context, run *sandbox.RunSpec) string {
	image := d.cfg.NetworkHolderImage
	if ok, err := d.ImagePresent(ctx, image); err != nil || !ok {
		d.log.Debug("no network holder: image not present", "image", image, "err", err)
		return ""
	}
	labels := runLabels(run)
	labels[labelRole] = "network-holder"
	useInit := true
	cctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	created, err := d.cli.ContainerCreate(cctx,
		&container.Config{Image: image, Cmd: []string{"sleep", "2147483647"}, Labels: labels},
		&container.HostConfig{
			Init:        &useInit,
			NetworkMode: container.NetworkMode(networkName(run)),
			CapDrop:     []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"},
			LogConfig:   container.LogConfig{Type: "none"},
		}, nil, nil, holderName(run))
	if err != nil {
		d.log.Debug("no network holder", "run", run.ID, "workspace", run.Workspace, "err", err)
		return ""
	}
	if err := d.cli.ContainerStart(cctx, created.ID, container.StartOptions{}); err != nil {
		d.log.Debug("no network holder", "run", run.ID, "workspace", run.Workspace, "err", err)
		if err := d.removeContainer(cctx, created.ID); err != nil {
			d.log.Warn("removing a network holder that did not start", "run", run.ID, "err", err)
		}
		return ""
	}
	return created.ID
}

// leaseHolder gives the step stepKey the namespace of run's holder if it
// is up and free, and returns the network mode to use ("" = its own
// endpoint).
func (d *Docker) leaseHolder(run *sandbox.RunSpec, stepKey string) container.NetworkMode {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.holders[wsKey(run)]
	if h == nil || h.id == "" || h.lease != "" {
		return ""
	}
	h.lease = stepKey
	return container.NetworkMode("container:" + h.id)
}

// releaseHolder ends the lease of step stepKey, if it has it.
func (d *Docker) releaseHolder(run *sandbox.RunSpec, stepKey string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.holders[wsKey(run)]; h != nil && h.lease == stepKey {
		h.lease = ""
	}
}

// forgetHolder stops using run's holder and waits until its start attempt
// ended, so the container list that follows finds it.
func (d *Docker) forgetHolder(run *sandbox.RunSpec) {
	d.mu.Lock()
	h := d.holders[wsKey(run)]
	delete(d.holders, wsKey(run))
	d.mu.Unlock()
	if h != nil {
		<-h.ready
	}
}

// forgetHolders forgets the holders of every workspace of run id.
func (d *Docker) forgetHolders(runID string) {
	d.mu.Lock()
	var hs []*netHolder
	for k, h := range d.holders {
		if k == runID || len(k) > len(runID) && k[:len(runID)+1] == runID+"-" {
			hs = append(hs, h)
			delete(d.holders, k)
		}
	}
	d.mu.Unlock()
	for _, h := range hs {
		<-h.ready
	}
}
