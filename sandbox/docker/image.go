package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/sandbox"
)

// ImagePresent reports whether the engine has the image ref (a name with
// optional tag or digest, e.g. "alpine:3.20") locally. Errors are engine
// errors, wrapping sandbox.ErrUnavailable when it cannot be reached.
func (d *Docker) ImagePresent(ctx context.Context, ref string) (bool, error) {
	_, err := d.cli.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, engineErr(fmt.Sprintf("inspect image %q", ref), err)
	}
}

// ensureImage makes ref present according to policy ("" means
// sandbox.PullIfNotPresent). The registry host policy is applied above the
// backend (package sandbox/registry). Failures that are the step's fault (missing
// image, refused registry, failed pull, unknown policy) are
// *sandbox.StepError; an unreachable engine is not.
func (d *Docker) ensureImage(ctx context.Context, ref string, policy sandbox.PullPolicy) error {
	if ref == "" {
		return &sandbox.StepError{Msg: "no image given"}
	}
	switch policy {
	case "", sandbox.PullIfNotPresent, sandbox.PullNever:
		ok, err := d.ImagePresent(ctx, ref)
		if err != nil || ok {
			return err
		}
		if policy == sandbox.PullNever {
			return &sandbox.StepError{Msg: fmt.Sprintf("image %q is not present (pull policy never)", ref)}
		}
		return d.pullOrFail(ctx, ref, fmt.Sprintf("image %q is not present and could not be pulled", ref))
	case sandbox.PullAlways:
		return d.pullOrFail(ctx, ref, fmt.Sprintf("image %q could not be pulled (pull policy always)", ref))
	default:
		return &sandbox.StepError{Msg: fmt.Sprintf("unknown pull policy %q", policy)}
	}
}

// pullOrFail pulls ref; msg says what failed; see pullErr for the errors.
func (d *Docker) pullOrFail(ctx context.Context, ref, msg string) error {
	pulled := d.pull(ctx, ref)
	if pulled == nil {
		return nil
	}
	err := pullErr(msg, &pullFailure{err: pulled})
	if _, ok := err.(*sandbox.StepError); ok { // the engine's full reason, for the server's log only
		d.log.Info("image pull failed", "image", ref, "err", truncate(pulled.Error(), 4096))
	}
	return err
}

// pullErr makes a pull failure a *sandbox.StepError unless it is the
// engine's or the caller's (connection lost, context ended).
func pullErr(msg string, err error) error {
	if errors.Is(err, sandbox.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("docker: %s: %w", msg, err)
	}
	return &sandbox.StepError{Msg: msg, Err: err}
}

// pullCall is one pull in flight, shared by every caller that wants the
// same reference meanwhile.
type pullCall struct {
	done    chan struct{} // closed when err is set
	err     error
	waiters int                // callers still waiting; at zero the pull is cancelled
	cancel  context.CancelFunc // cancels the pull's own context
}

// pull pulls ref once for all concurrent callers. The pull runs on its own
// context (bounded by Config.PullTimeout) so that one caller giving up does
// not fail the others; it is cancelled when every caller has given up.
func (d *Docker) pull(ctx context.Context, ref string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("docker: backend closed")
	}
	c := d.pulls[ref]
	if c == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.PullTimeout)
		c = &pullCall{done: make(chan struct{}), cancel: cancel}
		d.pulls[ref] = c
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			err := d.pullImage(pctx, ref)
			cancel()
			d.mu.Lock()
			if d.pulls[ref] == c {
				delete(d.pulls, ref)
			}
			c.err = err
			d.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	d.mu.Unlock()

	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		d.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			// Nobody wants this pull any more; a later caller starts afresh
			// instead of joining a cancelled one.
			c.cancel()
			if d.pulls[ref] == c {
				delete(d.pulls, ref)
			}
		}
		d.mu.Unlock()
		return ctx.Err()
	}
}

// pullMessage is the part of the engine's pull progress stream (one JSON
// object per line) that carries failures.
type pullMessage struct {
	Error       string `json:"error"`
	ErrorDetail struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// pullOnce asks the engine to pull ref and drains the progress stream: the
// HTTP status is 200 once the pull starts, so failures after that arrive as
// an "error" message in the stream.
func (d *Docker) pullOnce(ctx context.Context, ref string) error {
	d.log.Info("pulling image", "image", ref)
	rc, err := d.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return pullEngineErr(ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m pullMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return pullEngineErr(ref, err)
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
	d.log.Info("pulled image", "image", ref)
	return nil
}

// pullEngineErr keeps the engine's own message for user-facing pull errors
// (registry unreachable, unknown repository) and marks lost connections.
func pullEngineErr(ref string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return engineErr(fmt.Sprintf("pull %q", ref), err)
	}
	return err
}
