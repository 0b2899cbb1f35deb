package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
)

// DefaultReadyTimeout is how long a service may take to become ready when
// its workflow sets no ready_timeout.
const DefaultReadyTimeout = 60 * time.Second

// startedService is a service of an instance whose container was asked
// for; err is why it did not become ready.
type startedService struct {
	svc  *plan.Service
	spec *sandbox.ServiceSpec
	err  error
}

// startServices starts the workflow's services and waits until every one
// is ready (all at once). An error names the service and carries its last
// output lines; the services started are removed by destroyServices.
func (in *instance) startServices(ctx context.Context) error {
	if len(in.wf.Services) == 0 {
		return nil
	}
	sr, err := sandbox.Services(in.x.be)
	if err != nil {
		return fmt.Errorf("the workflow has services, but %w", err)
	}
	sink, _ := in.x.sink.(ServiceSink)
	for i := range in.wf.Services {
		svc := &in.wf.Services[i]
		s := &startedService{svc: svc, spec: in.serviceSpec(svc)}
		in.services = append(in.services, s)
		var out io.Writer = io.Discard
		if sink != nil {
			if w := sink.ServiceStarted(in.wf, svc, time.Now()); w != nil {
				out = w
			}
		}
		if err := sr.StartService(ctx, in.spec, s.spec, out); err != nil {
			s.err = fmt.Errorf("service %s could not start: %w", svc.Name, err)
			return s.err
		}
	}
	var wg sync.WaitGroup
	for _, s := range in.services {
		wg.Go(func() {
			var ready []string
			if s.svc.Ready != "" {
				ready = []string{"/bin/sh", "-c", s.svc.Ready}
			}
			timeout := s.svc.ReadyTimeout
			if timeout <= 0 {
				timeout = DefaultReadyTimeout
			}
			s.err = sr.WaitServiceReady(ctx, in.spec, s.spec, ready, timeout)
		})
	}
	wg.Wait()
	var errs []error
	for _, s := range in.services {
		if s.err != nil && ctx.Err() == nil {
			errs = append(errs, s.err)
		}
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// serviceSpec is the container spec of svc: its environment, then the
// repository secrets it lists.
func (in *instance) serviceSpec(svc *plan.Service) *sandbox.ServiceSpec {
	env := make([]string, 0, len(svc.Env)+len(svc.Secrets))
	for _, e := range svc.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	for _, name := range svc.Secrets {
		for _, kv := range in.x.opts.Secrets {
			if strings.HasPrefix(kv, name+"=") {
				env = append(env, kv)
			}
		}
	}
	return &sandbox.ServiceSpec{Name: svc.Name, Image: svc.Image, Pull: svc.Pull, Command: svc.Command, Env: env, Limits: svc.Limits}
}

// destroyServices removes the instance's services and tells the sink how
// each ended.
func (in *instance) destroyServices(ctx context.Context) {
	if len(in.services) == 0 {
		return
	}
	sr, err := sandbox.Services(in.x.be)
	if err != nil {
		return
	}
	sink, _ := in.x.sink.(ServiceSink)
	for _, s := range in.services {
		if err := sr.DestroyService(ctx, in.spec, s.spec); err != nil {
			in.x.log().Error("removing a service", "run", in.spec.ID, "service", s.svc.Name, "err", err)
		}
		if sink != nil {
			sink.ServiceEnded(in.wf, s.svc, s.err)
		}
	}
	in.services = nil
}

// restoreCaches prepares the workflow's caches; steps mount them from
// in.caches.
func (in *instance) restoreCaches(ctx context.Context) error {
	if len(in.wf.Caches) == 0 || in.x.opts.Keep == nil {
		return nil // without a keeper (local runs) steps run without caches
	}
	in.cachesRestored = true
	mounts, err := in.x.opts.Keep.RestoreCaches(ctx, in.spec, in.wf)
	if err != nil {
		return fmt.Errorf("restoring caches: %w", err)
	}
	in.caches = mounts
	return nil
}

// endCaches saves the caches of a workflow instance that succeeded and
// drops what any other wrote.
func (in *instance) endCaches(ctx context.Context) {
	if !in.cachesRestored {
		return
	}
	success := !in.failed && in.setupErr == nil && context.Cause(in.ctx) == nil
	if err := in.x.opts.Keep.EndCaches(ctx, in.spec, in.wf, success); err != nil {
		in.x.log().Error("keeping the caches", "run", in.spec.ID, "workspace", in.spec.Workspace, "err", err)
	}
}

// keepArtifacts copies the artifacts of a step that ran, as its
// ArtifactsWhen says; a failure to keep them fails the step.
func (in *instance) keepArtifacts(ctx context.Context, st *plan.Step, end StepEnd) StepEnd {
	if len(st.Artifacts) == 0 || end.Started.IsZero() || in.x.opts.Keep == nil {
		return end // without a keeper (local runs) nothing is kept
	}
	switch st.ArtifactsWhen {
	case "success":
		if end.Status != StepCompleted {
			return end
		}
	case "failure":
		if end.Status != StepFailed {
			return end
		}
	default:
		if end.Status != StepCompleted && end.Status != StepFailed {
			return end
		}
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	err := in.x.opts.Keep.KeepArtifacts(kctx, in.spec, st)
	cancel()
	if err != nil {
		end.Status = StepFailed
		if end.Error != "" {
			end.Error += "; "
		}
		end.Error += "artifacts: " + err.Error()
		end.Ended = time.Now()
	}
	return end
}

// reuse ends every step of a workflow a failed-only re-run takes as it
// was; it reports whether the instance is one.
func (in *instance) reuse() bool {
	if in.x.opts.Reuse == nil || !in.x.opts.Reuse(in.wf) {
		return false
	}
	for _, st := range in.wf.Steps {
		in.x.sink.StepEnded(st, StepEnd{Status: StepCompleted, Reused: true})
	}
	return true
}
