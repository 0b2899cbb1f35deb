package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/kod-forge/kod/sandbox"
)

// Caches are overlay file systems over immutable layers, each layer a
// plain Docker volume:
//
//	kod-cl-<run>[-<workspace>]-<index>       a layer: what one run wrote into one cache
//	kod-<run>[-<workspace>].cache-<index>    the run's working copy: an overlay (local
//	                                         driver, type overlay) of the layers of
//	                                         CacheSpec.From under the run's new layer
//	kod-<run>[-<workspace>].cache-<index>-w  the overlay's work directory
//	kod-<run>[-<workspace>].cache-<index>-b  an empty lower for a cache without layers
//
// Restoring costs a few volume creations whatever the cache's size (no
// byte is copied), and a failed run's writes stay in its own layer, which
// is dropped. Saving keeps the run's layer on top of the old ones, or, past
// maxCacheLayers, squashes them into one fresh layer (one copy every few
// runs, after the run, off the path of the next run's start).
//
// Layers carry labelCache and labelCacheInstance but neither
// sandbox.LabelManaged nor sandbox.LabelRun: Sweep and DestroyRun leave
// them. The working copy's volumes carry the run's labels, so Sweep
// removes them after a crash.
const (
	labelCache         = "dev.kod.cache"          // "layer"
	labelCacheInstance = "dev.kod.cache-instance" // instance id of the server that made the layer
	labelCacheRun      = "dev.kod.cache-run"      // run that wrote the layer
)

// maxCacheLayers is the longest chain of layers SaveCache leaves.
const maxCacheLayers = 4

func layerName(run *sandbox.RunSpec, index int) string {
	return "kod-cl-" + strings.TrimPrefix(runPrefix(run), "kod-") + "-" + strconv.Itoa(index)
}

func cacheVolume(run *sandbox.RunSpec, index int) string {
	return runPrefix(run) + ".cache-" + strconv.Itoa(index)
}

func checkCache(run *sandbox.RunSpec, c *sandbox.CacheSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	if c == nil || c.Index < 0 {
		return errors.New("docker: need a CacheSpec with Index >= 0")
	}
	if !strings.HasPrefix(c.Path, "/") || c.Path == "/" {
		return fmt.Errorf("docker: cache path %q must be absolute and not /", c.Path)
	}
	for _, l := range c.From {
		if !strings.HasPrefix(l, "kod-cl-") || strings.ContainsAny(l, "/,:") {
			return fmt.Errorf("docker: %q is not a cache layer of this backend", l)
		}
	}
	return nil
}

// RestoreCache implements sandbox.CacheStore: it creates the run's new
// layer, the work directory and the overlay volume whose lower layers are
// c.From (top last in From, first in the overlay's lowerdir).
func (d *Docker) RestoreCache(ctx context.Context, run *sandbox.RunSpec, c *sandbox.CacheSpec) error {
	if err := checkCache(run, c); err != nil {
		return err
	}
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	labels := specLabels(run)
	lower := make([]string, 0, len(c.From)+1)
	for i := len(c.From) - 1; i >= 0; i-- {
		v, err := d.cli.VolumeInspect(cctx, c.From[i])
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return fmt.Errorf("docker: cache layer %s is missing", c.From[i])
			}
			return engineErr("inspect cache layer "+c.From[i], err)
		}
		lower = append(lower, v.Mountpoint)
	}
	name := cacheVolume(run, c.Index)
	if len(lower) == 0 {
		base, err := d.cli.VolumeCreate(cctx, volume.CreateOptions{Name: name + "-b", Driver: "local", Labels: labels})
		if err != nil {
			return engineErr("create volume "+name+"-b", err)
		}
		lower = append(lower, base.Mountpoint)
	}
	layerLabels := map[string]string{labelCache: "layer", labelCacheInstance: run.Instance, labelCacheRun: run.ID}
	upper, err := d.cli.VolumeCreate(cctx, volume.CreateOptions{Name: layerName(run, c.Index), Driver: "local", Labels: layerLabels})
	if err != nil {
		return engineErr("create cache layer "+layerName(run, c.Index), err)
	}
	work, err := d.cli.VolumeCreate(cctx, volume.CreateOptions{Name: name + "-w", Driver: "local", Labels: labels})
	if err != nil {
		return engineErr("create volume "+name+"-w", err)
	}
	for _, p := range append(lower, upper.Mountpoint, work.Mountpoint) {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("docker: volume path %q cannot be used in an overlay", p)
		}
	}
	// A working copy left by an earlier attempt of the same run is
	// replaced: its options may name other layers.
	if err := d.cli.VolumeRemove(cctx, name, false); err != nil && !cerrdefs.IsNotFound(err) {
		return engineErr("remove volume "+name, err)
	}
	_, err = d.cli.VolumeCreate(cctx, volume.CreateOptions{
		Name:   name,
		Driver: "local",
		DriverOpts: map[string]string{
			"type":   "overlay",
			"device": "overlay",
			"o":      "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper.Mountpoint + ",workdir=" + work.Mountpoint,
		},
		Labels: labels,
	})
	if err != nil {
		return engineErr("create cache volume "+name, err)
	}
	return ctx.Err()
}

// cacheMounts are the mounts of step's caches.
func cacheMounts(run *sandbox.RunSpec, step *sandbox.StepSpec) []mount.Mount {
	var ms []mount.Mount
	for _, c := range step.Caches {
		ms = append(ms, mount.Mount{
			Type:   mount.TypeVolume,
			Source: cacheVolume(run, c.Index),
			Target: c.Path,
			// Labels apply if the engine creates the volume (no
			// RestoreCache): then it is a plain volume of the run.
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: specLabels(run)},
		})
	}
	return ms
}

// saveScript runs in the helper container of SaveCache with the run's
// layer at /u, the working copy at /c and, when squashing, a new layer at
// /n. It prints "changed" or "same", then the size in KiB.
const saveScript = `set -e
if [ -z "$(ls -A /u)" ]; then echo same; else
  echo changed
  if [ "$1" = squash ]; then cp -a /c/. /n/; fi
fi
du -sk /c | cut -f1`

// SaveCache implements sandbox.CacheStore. A run that wrote nothing keeps
// c.From (its empty layer is removed); otherwise its layer goes on top, and
// a chain longer than maxCacheLayers is squashed into a fresh layer (the
// old ones are then Unused). The working copy's volumes are removed.
func (d *Docker) SaveCache(ctx context.Context, run *sandbox.RunSpec, c *sandbox.CacheSpec) (sandbox.CacheSaved, error) {
	if err := checkCache(run, c); err != nil {
		return sandbox.CacheSaved{}, err
	}
	name := cacheVolume(run, c.Index)
	layer := layerName(run, c.Index)
	squash := len(c.From)+1 > maxCacheLayers
	mounts := []mount.Mount{
		{Type: mount.TypeVolume, Source: layer, Target: "/u", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}},
		{Type: mount.TypeVolume, Source: name, Target: "/c", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}},
	}
	arg := "keep"
	squashed := layer + "-s"
	if squash {
		arg = "squash"
		_, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: squashed, Driver: "local",
			Labels: map[string]string{labelCache: "layer", labelCacheInstance: run.Instance, labelCacheRun: run.ID}})
		if err != nil {
			return sandbox.CacheSaved{}, engineErr("create cache layer "+squashed, err)
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: squashed, Target: "/n", VolumeOptions: &mount.VolumeOptions{NoCopy: true}})
	}
	out, err := d.runHelper(ctx, run, c.Image, "cache-helper", []string{"/bin/sh", "-c", saveScript, "sh", arg}, mounts)
	if err != nil {
		return sandbox.CacheSaved{}, fmt.Errorf("docker: saving cache %s: %w", c.Path, err)
	}
	fields := strings.Fields(out)
	if len(fields) != 2 {
		return sandbox.CacheSaved{}, fmt.Errorf("docker: saving cache %s: unexpected helper output %q", c.Path, out)
	}
	kib, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return sandbox.CacheSaved{}, fmt.Errorf("docker: saving cache %s: unexpected size %q", c.Path, fields[1])
	}
	saved := sandbox.CacheSaved{Size: kib * 1024}
	var drop []string
	switch {
	case fields[0] == "same":
		saved.Layers = append([]string(nil), c.From...)
		drop = []string{layer}
		if squash {
			drop = append(drop, squashed)
		}
	case squash:
		saved.Layers, saved.Changed, saved.Unused = []string{squashed}, true, append([]string(nil), c.From...)
		drop = []string{layer}
	default:
		saved.Layers, saved.Changed = append(append([]string(nil), c.From...), layer), true
	}
	err = errors.Join(d.removeWorkingCopy(ctx, run, c.Index), d.DeleteCacheLayers(ctx, drop))
	return saved, err
}

// DiscardCache implements sandbox.CacheStore.
func (d *Docker) DiscardCache(ctx context.Context, run *sandbox.RunSpec, c *sandbox.CacheSpec) error {
	if err := checkCache(run, c); err != nil {
		return err
	}
	return errors.Join(d.removeWorkingCopy(ctx, run, c.Index),
		d.DeleteCacheLayers(ctx, []string{layerName(run, c.Index), layerName(run, c.Index) + "-s"}))
}

// removeWorkingCopy removes the overlay, work and base volumes of a cache.
func (d *Docker) removeWorkingCopy(ctx context.Context, run *sandbox.RunSpec, index int) error {
	name := cacheVolume(run, index)
	var errs []error
	for _, v := range []string{name, name + "-w", name + "-b"} {
		if err := d.cli.VolumeRemove(ctx, v, false); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, engineErr("remove volume "+v, err))
		}
	}
	return errors.Join(errs...)
}

// DeleteCacheLayers implements sandbox.CacheStore.
func (d *Docker) DeleteCacheLayers(ctx context.Context, layers []string) error {
	var errs []error
	for _, l := range layers {
		if !strings.HasPrefix(l, "kod-cl-") {
			errs = append(errs, fmt.Errorf("docker: %q is not a cache layer", l))
			continue
		}
		if err := d.cli.VolumeRemove(ctx, l, false); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, engineErr("remove cache layer "+l, err))
		}
	}
	return errors.Join(errs...)
}

// PruneCaches implements sandbox.CacheStore. Layers a container still
// mounts are skipped, not errors.
func (d *Docker) PruneCaches(ctx context.Context, instance string, keep func(layer string) bool) ([]string, error) {
	if instance == "" {
		return nil, errors.New("docker: PruneCaches needs an instance id")
	}
	list, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", labelCache+"=layer"),
		filters.Arg("label", labelCacheInstance+"="+instance),
	)})
	if err != nil {
		return nil, engineErr("list cache layers", err)
	}
	var removed []string
	var errs []error
	for _, v := range list.Volumes {
		if keep(v.Name) {
			continue
		}
		err := d.cli.VolumeRemove(ctx, v.Name, false)
		switch {
		case err == nil || cerrdefs.IsNotFound(err):
			removed = append(removed, v.Name)
		case cerrdefs.IsConflict(err): // in use
		default:
			errs = append(errs, engineErr("remove cache layer "+v.Name, err))
		}
	}
	return removed, errors.Join(errs...)
}

// runHelper runs cmd in a container of image with the run's labels, the
// steps' hardening, no network and mounts, and returns its stdout. A
// non-zero exit is an error carrying its stderr.
func (d *Docker) runHelper(ctx context.Context, run *sandbox.RunSpec, image, role string, cmd []string, mounts []mount.Mount) (string, error) {
	if image == "" {
		return "", errors.New("no helper image given")
	}
	if err := d.ensureImage(ctx, image, sandbox.PullIfNotPresent); err != nil {
		return "", err
	}
	labels := specLabels(run)
	labels[labelRole] = role
	var secOpt []string
	if !d.cfg.Security.AllowNewPrivileges {
		secOpt = []string{"no-new-privileges"}
	}
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	created, err := d.cli.ContainerCreate(cctx,
		&container.Config{Image: image, Cmd: cmd, Labels: labels, NetworkDisabled: true, AttachStdout: true, AttachStderr: true},
		&container.HostConfig{NetworkMode: "none", Mounts: mounts, SecurityOpt: secOpt, CapDrop: d.cfg.Security.CapDrop,
			Runtime: d.cfg.Security.Runtime, LogConfig: container.LogConfig{Type: "none"}},
		nil, nil, "")
	if err != nil {
		return "", engineErr("create helper", err)
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = d.removeContainer(cctx, created.ID)
	}()
	attach, err := d.cli.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return "", engineErr("attach to helper", err)
	}
	defer attach.Close()
	waitC, waitErrC := d.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return "", engineErr("start helper", err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, io.LimitReader(attach.Reader, 1<<20)); err != nil {
		return "", fmt.Errorf("reading helper output: %w", err)
	}
	select {
	case res := <-waitC:
		if res.StatusCode != 0 {
			return "", fmt.Errorf("helper exited with code %d: %s", res.StatusCode, strings.TrimSpace(stderr.String()))
		}
	case err := <-waitErrC:
		return "", engineErr("wait for helper", err)
	}
	return stdout.String(), nil
}

var _ sandbox.CacheStore = (*Docker)(nil)
