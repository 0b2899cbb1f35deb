package kubernetes

import (
	"fmt"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kod-forge/kod/sandbox"
)

// Waiting reasons of a container the kubelet reports (kubelet/images).
const (
	reasonErrImagePull        = "ErrImagePull"
	reasonImagePullBackOff    = "ImagePullBackOff"
	reasonInvalidImageName    = "InvalidImageName"
	reasonErrImageNeverPull   = "ErrImageNeverPull"
	reasonCreateConfigError   = "CreateContainerConfigError"
	conditionDisruptionTarget = corev1.DisruptionTarget
)

// podEval turns the successive states of a step pod into the step's
// progress: placed, started, ended (with an exit state or why not). It is
// used by one goroutine only; what it records in st is published by
// closing st.started and st.ended.
type podEval struct {
	k       *Kubernetes
	st      *stepState
	created time.Time

	pullSince     time.Time // first seen failing to pull
	configSince   time.Time // first seen failing to be configured
	notReadySince time.Time // first seen not ready while running
	ran           bool      // the container was seen running or ended
	startedClosed bool
	done          bool
}

func (w *podEval) markStarted() {
	if !w.startedClosed {
		w.startedClosed = true
		close(w.st.started)
	}
}

// fail ends the step without an exit state.
func (w *podEval) fail(err error) bool {
	w.st.endErr = err
	w.done = true
	return true
}

// eval is the watchPod callback: true once the step has ended.
func (w *podEval) eval(pod *corev1.Pod) bool {
	st := w.st
	if pod == nil {
		if st.stopped.Load() && w.ran {
			// Stopped by deleting it (StopStep with another grace).
			st.exit = sandbox.ExitState{ExitCode: 128 + int(syscall.SIGKILL)}
			w.done = true
			return true
		}
		return w.fail(fmt.Errorf("the step's pod %s was deleted", st.pod))
	}
	if !w.startedClosed && pod.Spec.NodeName != "" {
		st.node = pod.Spec.NodeName
	}
	cs := containerStatus(pod, stepContainer)
	if cs != nil && cs.State.Terminated != nil {
		t := cs.State.Terminated
		st.exit = sandbox.ExitState{ExitCode: int(t.ExitCode), OOMKilled: t.Reason == "OOMKilled"}
		w.ran, w.done = true, true
		w.markStarted()
		return true
	}
	running := cs != nil && cs.State.Running != nil
	if running {
		w.ran = true
		w.markStarted()
	}
	if pod.DeletionTimestamp != nil && !st.stopped.Load() {
		return w.fail(fmt.Errorf("the cluster is deleting the step's pod %s%s", st.pod, disruption(pod)))
	}
	if !running && (pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded) {
		return w.fail(fmt.Errorf("the step's pod %s ended without running: %s", st.pod, podReason(pod)))
	}
	now := time.Now()
	if running {
		return w.nodeLost(pod, now)
	}
	if pod.Spec.NodeName == "" {
		return w.unschedulable(pod, now)
	}
	if cs == nil || cs.State.Waiting == nil {
		return false
	}
	return w.waiting(cs.State.Waiting, pod, now)
}

// unschedulable fails a pod the scheduler could not place for
// Config.ScheduleTimeout, with the scheduler's reason.
func (w *podEval) unschedulable(pod *corev1.Pod, now time.Time) bool {
	c := podCondition(pod, corev1.PodScheduled)
	if c == nil || c.Status != corev1.ConditionFalse || now.Sub(w.created) < w.k.cfg.ScheduleTimeout {
		return false
	}
	return w.fail(&sandbox.StepError{Msg: fmt.Sprintf("no node could run the step within %s: %s: %s",
		w.k.cfg.ScheduleTimeout, c.Reason, c.Message)})
}

// waiting fails a container that cannot start: at once for errors that
// cannot heal, after Config.PullTimeout for failing pulls and
// Config.ConfigTimeout for a container the kubelet cannot configure yet.
func (w *podEval) waiting(s *corev1.ContainerStateWaiting, pod *corev1.Pod, now time.Time) bool {
	image := pod.Spec.Containers[0].Image
	switch s.Reason {
	case reasonInvalidImageName:
		return w.fail(&sandbox.StepError{Msg: fmt.Sprintf("invalid image name %q: %s", image, s.Message)})
	case reasonErrImageNeverPull:
		return w.fail(&sandbox.StepError{Msg: fmt.Sprintf("image %q is not present on node %s (pull policy never)", image, pod.Spec.NodeName)})
	case reasonCreateConfigError:
		// Retried by the kubelet; usually the step's Secret not yet in
		// its cache.
		if w.configSince.IsZero() {
			w.configSince = now
		}
		if now.Sub(w.configSince) >= w.k.cfg.ConfigTimeout {
			return w.fail(&sandbox.StepError{Msg: fmt.Sprintf("the step's container could not be configured within %s: %s",
				w.k.cfg.ConfigTimeout, s.Message)})
		}
		return false
	case reasonErrImagePull, reasonImagePullBackOff:
		if w.pullSince.IsZero() {
			w.pullSince = now
		}
		if now.Sub(w.pullSince) >= w.k.cfg.PullTimeout {
			return w.fail(&sandbox.StepError{Msg: fmt.Sprintf("image %q could not be pulled within %s: %s: %s",
				image, w.k.cfg.PullTimeout, s.Reason, s.Message)})
		}
	default:
		w.pullSince = time.Time{}
		w.configSince = time.Time{}
	}
	return false
}

// nodeLost fails a running step whose pod has been reported not ready for
// Config.NodeLostTimeout: the node stopped reporting (the node controller
// marks its pods not ready) while the container was running.
func (w *podEval) nodeLost(pod *corev1.Pod, now time.Time) bool {
	c := podCondition(pod, corev1.PodReady)
	if c == nil || c.Status == corev1.ConditionTrue {
		w.notReadySince = time.Time{}
		return false
	}
	if w.notReadySince.IsZero() {
		w.notReadySince = now
	}
	if now.Sub(w.notReadySince) < w.k.cfg.NodeLostTimeout {
		return false
	}
	why := c.Message
	if why == "" {
		why = c.Reason
	}
	if why != "" {
		why = " (" + why + ")"
	}
	return w.fail(fmt.Errorf("node %s lost: the step's pod has not been ready for %s while running%s", pod.Spec.NodeName, w.k.cfg.NodeLostTimeout, why))
}

func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == name {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// podReason is the pod's own reason and message, e.g. "Evicted: The node
// was low on resource: memory".
func podReason(pod *corev1.Pod) string {
	r := pod.Status.Reason
	if r == "" {
		r = string(pod.Status.Phase)
	}
	if pod.Status.Message != "" {
		r += ": " + pod.Status.Message
	}
	return r
}

// disruption is ": <reason>: <message>" of the pod's DisruptionTarget
// condition (why the cluster deletes it), or "".
func disruption(pod *corev1.Pod) string {
	c := podCondition(pod, conditionDisruptionTarget)
	if c == nil || c.Status != corev1.ConditionTrue {
		return ""
	}
	return ": " + c.Reason + ": " + c.Message
}
