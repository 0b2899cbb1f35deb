package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kod-forge/kod/sandbox"
)

// stepState follows one started step pod: one goroutine watches the pod
// (scheduling, image pull, exit, node loss), another follows its log.
type stepState struct {
	pod    string
	ws     string             // sandbox.RunSpec.Workspace of the step
	cancel context.CancelFunc // ends both goroutines

	started  chan struct{} // closed once the container ran (or the step ended first)
	node     string        // set before started or ended is closed, when known
	ended    chan struct{} // closed once exit/endErr are set by the watcher
	exit     sandbox.ExitState
	endErr   error // the step ended without an exit state (never started, node lost)
	ran      bool  // the container ran (set before ended is closed)
	logDone  chan struct{}
	logErr   error
	stopped  atomic.Bool // StopStep was called
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// stop ends both goroutines, whether or not the pod still runs, and waits
// for them.
func (st *stepState) stop() {
	st.stopOnce.Do(st.cancel)
	st.wg.Wait()
}

// pin is the node of a run's workspace, chosen by the scheduler for the
// workspace's first pod. mu is held while that first pod is being placed,
// so a second pod of the run waits for the node instead of going anywhere.
type pin struct {
	mu    sync.Mutex
	node  string
	runID string // the run and workspace the pin is of
	ws    string
}

// pinOf returns the pin of run's workspace, creating it.
func (k *Kubernetes) pinOf(run *sandbox.RunSpec) *pin {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := wsKey(run)
	p := k.pins[key]
	if p == nil {
		p = &pin{runID: run.ID, ws: run.Workspace}
		k.pins[key] = p
	}
	return p
}

// StartStep creates the step's Secret (its environment) and pod and
// returns once the step's container has started, with out receiving the
// container's output (stdout and stderr as the container runtime logged
// them) until the step ends. The pod goes to the node of the run's
// workspace. Failures that are the step's (invalid spec,
// image that cannot be pulled within Config.PullTimeout or never can, no
// node fitting within Config.ScheduleTimeout) are *sandbox.StepError; on any
// error nothing of the step is left. out must not be used by the caller
// again until WaitStep has returned or DestroyStep was called.
func (k *Kubernetes) StartStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) error {
	if err := checkStep(run, step); err != nil {
		return err
	}
	key := stepKey(run.ID, step.Index)
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return errors.New("kubernetes: backend closed")
	}
	if _, ok := k.steps[key]; ok {
		k.mu.Unlock()
		return fmt.Errorf("kubernetes: step %d of run %s already started", step.Index, run.ID)
	}
	k.steps[key] = nil // reserved while starting
	k.starting[key] = run.Workspace
	k.mu.Unlock()

	st, err := k.startStep(ctx, run, step, out)
	k.mu.Lock()
	delete(k.starting, key)
	reserved, ok := k.steps[key]
	if err == nil && (!ok || reserved != nil || k.closed) {
		err = fmt.Errorf("kubernetes: step %d of run %s was destroyed while starting", step.Index, run.ID)
	}
	if err != nil {
		if ok && reserved == nil {
			delete(k.steps, key)
		}
		k.mu.Unlock()
		if st != nil {
			st.stop()
		}
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return errors.Join(err, k.removeStep(cctx, run, step))
	}
	k.steps[key] = st
	k.mu.Unlock()
	return nil
}

// startStep does the work of StartStep; the caller removes what is left
// on error.
func (k *Kubernetes) startStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) (*stepState, error) {
	if step.Image == "" {
		return nil, &sandbox.StepError{Msg: "no image given"}
	}
	data, env, err := stepEnv(envName(run.ID, step.Index), append(slices.Clone(sandbox.WorkspaceEnv), step.Env...))
	if err != nil {
		return nil, err
	}
	if run.Network == sandbox.NetworkNone || step.NoNetwork {
		if err := k.ensureNoNetworkPolicy(ctx, run); err != nil {
			return nil, err
		}
	}
	secret := &corev1.Secret{ObjectMeta: stepMeta(envName(run.ID, step.Index), run, step, "step"), Data: data, Type: corev1.SecretTypeOpaque}
	if err := k.createReplacing(ctx, kindSecret, secret.Name, func() error {
		_, err := k.cs.CoreV1().Secrets(k.cfg.Namespace).Create(ctx, secret, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}

	p := k.pinOf(run)
	p.mu.Lock()
	locked := true
	defer func() {
		if locked {
			p.mu.Unlock()
		}
	}()
	pod, err := k.stepPod(ctx, run, step, p.node, env)
	if err != nil {
		return nil, err
	}
	if err := k.createReplacing(ctx, kindPod, pod.Name, func() error {
		_, err := k.cs.CoreV1().Pods(k.cfg.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if p.node != "" {
		p.mu.Unlock()
		locked = false
	}
	st := k.follow(ctx, pod.Name, out)
	st.ws = run.Workspace
	// Until the container runs: the pod is placed, the image pulled.
	select {
	case <-st.started:
	case <-st.ended:
	case <-ctx.Done():
		st.stop()
		return st, ctx.Err()
	}
	if locked && st.node != "" {
		p.node = st.node
	}
	select {
	case <-st.ended:
		if st.endErr != nil {
			st.stop()
			return st, st.endErr
		}
	default:
		k.closeStdin(ctx, pod.Name)
	}
	return st, nil
}

// stdinTimeout bounds the attach that closes a step's stdin.
const stdinTimeout = 30 * time.Second

// closeStdin attaches to the running step with an empty stdin, which the
// runtime then closes (StdinOnce): the step's reads of stdin get EOF, from
// a pipe, as on the Docker backend. Until then a read waits, so a failed
// attach is tried twice more; a step that already ended refuses every
// attach, which is fine.
func (k *Kubernetes) closeStdin(ctx context.Context, pod string) {
	actx, cancel := context.WithTimeout(ctx, stdinTimeout)
	defer cancel()
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-actx.Done():
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		err = k.attach(actx, pod, stepContainer, strings.NewReader(""))
		if err == nil || actx.Err() != nil || errors.Is(err, errNoREST) {
			break
		}
	}
	if err != nil {
		k.log.Warn("could not close the step's stdin; a read of it waits until the step ends", "pod", pod, "err", err)
	}
}

// createReplacing runs create and, if an object of that name exists (left
// by an earlier attempt), deletes it and creates again once.
func (k *Kubernetes) createReplacing(ctx context.Context, kind, name string, create func() error) error {
	err := create()
	if apierrors.IsAlreadyExists(err) {
		k.log.Warn("replacing a leftover object", "kind", kind, "name", name)
		if err := k.deleteObject(ctx, kind, name); err != nil {
			return err
		}
		err = create()
	}
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return &sandbox.StepError{Msg: "invalid step", Err: err}
	}
	if err != nil {
		return apiErr("create "+kind+" "+name, err)
	}
	return nil
}

// lostLogGrace is how long the log of a step that ended without an exit
// state (node lost) is still read.
const lostLogGrace = 5 * time.Second

// follow starts the goroutines of a created pod.
func (k *Kubernetes) follow(ctx context.Context, pod string, out io.Writer) *stepState {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	lctx, cancelLog := context.WithCancel(fctx)
	st := &stepState{pod: pod, cancel: cancel, started: make(chan struct{}), ended: make(chan struct{}), logDone: make(chan struct{})}
	w := &podEval{k: k, st: st, created: time.Now()}
	st.wg.Add(2)
	go func() {
		defer st.wg.Done()
		err := k.watchPod(fctx, pod, w.eval)
		if err != nil && !w.done {
			st.endErr = fmt.Errorf("kubernetes: following pod %s: %w", pod, err)
		}
		st.ran = w.ran
		close(st.ended)
		if st.endErr != nil && st.ran {
			// The node is lost or the pod deleted: its log may never answer
			// again. Keep what arrives in the next seconds, then give up.
			time.AfterFunc(lostLogGrace, cancelLog)
		}
		w.markStarted() // after ended: a step that never ran has no log to follow
	}()
	go func() {
		defer st.wg.Done()
		defer close(st.logDone)
		select {
		case <-st.started:
		case <-fctx.Done():
			return
		}
		select {
		case <-st.ended:
			if !st.ran {
				return // never ran: no log
			}
		default:
		}
		defer cancelLog()
		st.logErr = k.followLog(lctx, pod, out, st.ended)
	}()
	return st
}

// removeStep deletes the step's pod (without grace) and Secret.
func (k *Kubernetes) removeStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	return errors.Join(
		k.deleteObject(ctx, kindPod, podName(run.ID, step.Index)),
		k.deleteObject(ctx, kindSecret, envName(run.ID, step.Index)),
	)
}
