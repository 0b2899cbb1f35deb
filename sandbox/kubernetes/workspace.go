package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/kod-forge/kod/sandbox"
)

// loaderContainer is the container of the workspace loader pod.
const loaderContainer = "load"

// LoadWorkspace extracts the tar stream (entries relative to the workspace
// root) into the run's workspace claim. A loader pod kod-<key>-load runs
// `tar -x` in image (which must have tar; the default step image does)
// with the claim at sandbox.WorkspacePath; the stream goes to its stdin
// through the attach API as it is read. As the first pod of the workspace it
// decides the node all the run's steps go to. The loader is deleted when it
// is done, even when ctx is cancelled. Existing files are overwritten.
func (k *Kubernetes) LoadWorkspace(ctx context.Context, run *sandbox.RunSpec, image string, tar io.Reader) (err error) {
	if err := checkRun(run); err != nil {
		return err
	}
	if image == "" {
		return &sandbox.StepError{Msg: "no image given for the workspace loader"}
	}
	c := corev1.Container{
		Name:            loaderContainer,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"tar", "-x", "-f", "-", "-C", sandbox.WorkspacePath},
		Stdin:           true,
		StdinOnce:       true,
	}
	meta := objectMeta(loaderName(run), run, map[string]string{labelRole: "workspace-loader"})
	meta.Labels[labelNetwork] = "none"
	if err := k.ensureNoNetworkPolicy(ctx, run); err != nil {
		return err
	}
	p := k.pinOf(run)
	p.mu.Lock()
	defer p.mu.Unlock()
	spec := k.podSpec(run, p.node, c)
	deadline := k.deadlineSeconds(ctx)
	spec.ActiveDeadlineSeconds = &deadline
	pod := &corev1.Pod{ObjectMeta: meta, Spec: spec}
	if err := k.createReplacing(ctx, kindPod, pod.Name, func() error {
		_, err := k.cs.CoreV1().Pods(k.cfg.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		err = errors.Join(err, k.deleteObject(cctx, kindPod, pod.Name))
	}()
	return k.runLoader(ctx, p, pod.Name, tar)
}

// runLoader waits for the loader to run, records its node as the
// workspace's, streams tar into it and checks that tar succeeded.
func (k *Kubernetes) runLoader(ctx context.Context, p *pin, name string, tar io.Reader) error {
	st := &stepState{pod: name, started: make(chan struct{}), ended: make(chan struct{})}
	w := &podEval{k: k, st: st, created: timeNow()}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The loader's container is called loaderContainer, not stepContainer.
	eval := func(pod *corev1.Pod) bool {
		if pod != nil {
			pod = renameContainer(pod, loaderContainer, stepContainer)
		}
		return w.eval(pod) || w.startedClosed
	}
	if err := k.watchPod(wctx, name, eval); err != nil {
		return fmt.Errorf("kubernetes: workspace loader %s: %w", name, err)
	}
	if st.endErr != nil {
		return st.endErr
	}
	if st.node != "" {
		p.node = st.node
	}
	if !w.done { // running: send the tree
		if err := k.attach(ctx, name, loaderContainer, tar); err != nil {
			return fmt.Errorf("kubernetes: sending the workspace to %s: %w", name, err)
		}
		if err := k.watchPod(wctx, name, eval2(w)); err != nil {
			return fmt.Errorf("kubernetes: workspace loader %s: %w", name, err)
		}
		if st.endErr != nil {
			return st.endErr
		}
	}
	if st.exit.ExitCode != 0 {
		return fmt.Errorf("kubernetes: extracting the workspace failed (tar exit code %d): %s", st.exit.ExitCode, k.logTail(ctx, name, loaderContainer))
	}
	return nil
}

// eval2 is the loader's evaluation once it runs: until it ends.
func eval2(w *podEval) func(*corev1.Pod) bool {
	return func(pod *corev1.Pod) bool {
		if pod != nil {
			pod = renameContainer(pod, loaderContainer, stepContainer)
		}
		return w.eval(pod)
	}
}

// renameContainer returns pod with container status from renamed to, so
// podEval (which looks at stepContainer) reads the loader's.
func renameContainer(pod *corev1.Pod, from, to string) *corev1.Pod {
	pod = pod.DeepCopy()
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == from {
			pod.Status.ContainerStatuses[i].Name = to
		}
	}
	return pod
}

// logTail returns the last 2 KiB of a container's log, for error messages.
func (k *Kubernetes) logTail(ctx context.Context, pod, container string) string {
	limit := int64(2048)
	rc, err := k.cs.CoreV1().Pods(k.cfg.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, LimitBytes: &limit}).Stream(ctx)
	if err != nil {
		return "(log unavailable: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, limit))
	return strings.TrimSpace(string(b))
}

// attachStdin streams stdin into container of pod (attach API, SPDY) until
// stdin ends, which closes the container's stdin (StdinOnce).
func attachStdin(ctx context.Context, rc *rest.Config, cs kubernetes.Interface, ns, pod, container string, stdin io.Reader) error {
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Container: container, Stdin: true}, scheme.ParameterCodec)
	exec, err := remotecommand.NewSPDYExecutor(rc, "POST", req.URL())
	if err != nil {
		return err
	}
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin})
}

// isUnreachable reports errors of reaching the API server itself.
func isUnreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}
