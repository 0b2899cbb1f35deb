package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kod-forge/kod/sandbox"
)

// WaitStep blocks until the step's container has ended and its whole log
// was written to the writer given to StartStep, then returns its exit code
// and whether it was OOM-killed (the container's terminated state). A step
// that ended without an exit state (its node was lost, the cluster deleted
// its pod) returns that reason as the error. If ctx ends first it returns
// ctx.Err() and the step keeps running. If writing output failed, the exit
// state is still returned, with that error. For a step this backend did not
// start (e.g. before a server restart) it waits for the pod by name, without
// output.
func (k *Kubernetes) WaitStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) (sandbox.ExitState, error) {
	if err := checkStep(run, step); err != nil {
		return sandbox.ExitState{}, err
	}
	k.mu.Lock()
	st := k.steps[stepKey(run.ID, step.Index)]
	k.mu.Unlock()
	if st == nil {
		return k.waitUntracked(ctx, podName(run.ID, step.Index))
	}
	for _, ch := range []chan struct{}{st.ended, st.logDone} {
		select {
		case <-ch:
		case <-ctx.Done():
			return sandbox.ExitState{}, ctx.Err()
		}
	}
	if st.endErr != nil {
		return sandbox.ExitState{}, st.endErr
	}
	if st.logErr != nil {
		return st.exit, fmt.Errorf("kubernetes: step %s: %w", st.pod, st.logErr)
	}
	return st.exit, nil
}

// waitUntracked waits for a step pod known only by name.
func (k *Kubernetes) waitUntracked(ctx context.Context, name string) (sandbox.ExitState, error) {
	st := &stepState{pod: name, started: make(chan struct{}), ended: make(chan struct{})}
	w := &podEval{k: k, st: st, created: time.Now()}
	seen := false
	err := k.watchPod(ctx, name, func(pod *corev1.Pod) bool {
		if pod != nil {
			seen = true
		}
		return w.eval(pod)
	})
	if err != nil {
		return sandbox.ExitState{}, err
	}
	if !seen {
		return sandbox.ExitState{}, fmt.Errorf("kubernetes: step %s does not exist", name)
	}
	return st.exit, st.endErr
}

// StopStep stops the step: SIGTERM to its processes, SIGKILL after the
// pod's grace (Config.StopGrace). It lowers the pod's activeDeadlineSeconds
// to the time it has run, so the kubelet ends the containers and keeps the
// pod, whose log WaitStep then reads to the end. A grace > 0 that differs
// from Config.StopGrace (whole seconds) can only be had by deleting the pod
// with that grace; its last output may then be lost. It returns once the
// kubelet was told; WaitStep reports the exit. A step that already ended or
// was removed is not an error.
func (k *Kubernetes) StopStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, grace time.Duration) error {
	if err := checkStep(run, step); err != nil {
		return err
	}
	name := podName(run.ID, step.Index)
	k.mu.Lock()
	if st := k.steps[stepKey(run.ID, step.Index)]; st != nil {
		st.stopped.Store(true)
	}
	k.mu.Unlock()
	pods := k.cs.CoreV1().Pods(k.cfg.Namespace)
	if grace > 0 && graceSeconds(grace) != graceSeconds(k.cfg.StopGrace) {
		err := pods.Delete(ctx, name, *metav1.NewDeleteOptions(graceSeconds(grace)))
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		return apiErr("stop pod "+name, err)
	}
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return apiErr("stop pod "+name, err)
	}
	if pod.Status.Phase == "Succeeded" || pod.Status.Phase == "Failed" {
		return nil
	}
	ran := int64(1)
	if pod.Status.StartTime != nil {
		ran = max(1, int64(time.Since(pod.Status.StartTime.Time).Seconds()))
	}
	if pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds <= ran {
		return nil // already stopping
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"activeDeadlineSeconds": ran}})
	_, err = pods.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	return apiErr("stop pod "+name, err)
}

// DestroyStep stops following the step and deletes its pod (killing it at
// once if it still runs) and its Secret. The workspace stays. A step that
// does not exist is not an error.
func (k *Kubernetes) DestroyStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	if err := checkStep(run, step); err != nil {
		return err
	}
	key := stepKey(run.ID, step.Index)
	k.mu.Lock()
	// A nil entry is a StartStep in progress; it notices the missing entry
	// and removes its pod itself.
	st := k.steps[key]
	delete(k.steps, key)
	k.mu.Unlock()
	if st != nil {
		st.stop()
	}
	return k.removeStep(ctx, run, step)
}

// forgetRun stops following every step of the run and forgets the nodes
// of its workspaces.
func (k *Kubernetes) forgetRun(runID string) {
	k.forgetSteps(runID, func(string) bool { return true })
}

// forgetWorkspace stops following the steps of run's workspace and
// forgets its node.
func (k *Kubernetes) forgetWorkspace(run *sandbox.RunSpec) {
	k.forgetSteps(run.ID, func(ws string) bool { return ws == run.Workspace })
}

// forgetSteps stops following the steps of run runID whose workspace
// matches (steps still starting too: they notice their missing entry) and
// forgets the node of each matching workspace.
func (k *Kubernetes) forgetSteps(runID string, match func(ws string) bool) {
	prefix := runID + "/"
	var states []*stepState
	k.mu.Lock()
	for key, st := range k.steps {
		ws := k.starting[key]
		if st != nil {
			ws = st.ws
		}
		if strings.HasPrefix(key, prefix) && match(ws) {
			delete(k.steps, key)
			if st != nil {
				states = append(states, st)
			}
		}
	}
	for key, p := range k.pins {
		if p.runID == runID && match(p.ws) {
			delete(k.pins, key)
		}
	}
	k.mu.Unlock()
	for _, st := range states {
		st.stop()
	}
}
