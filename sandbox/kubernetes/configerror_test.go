package kubernetes

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kod-forge/kod/sandbox"
)

// TestConfigErrorIsRetried: a container the kubelet cannot configure yet
// (its Secret not in the kubelet's cache: "failed to sync secret cache")
// is waited for, as the kubelet retries it; the step runs once it can. A
// configuration error that lasts ConfigTimeout fails the step with it.
func TestConfigErrorIsRetried(t *testing.T) {
	const msg = "failed to sync secret cache: timed out waiting for the condition"
	t.Run("heals", func(t *testing.T) {
		k, cs := newFake(t, Config{ConfigTimeout: time.Hour})
		k.openLog = func(context.Context, string, *corev1.PodLogOptions) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("")), nil
		}
		step := testStep(0)
		errc := startAsync(k, testRun, step, io.Discard)
		pod := awaitPod(t, cs, podName("r1", 0))
		setStatus(t, cs, pod.Name, waiting("n1", reasonCreateConfigError, msg))
		select {
		case err := <-errc:
			t.Fatalf("StartStep returned %v while the kubelet was still retrying", err)
		case <-time.After(300 * time.Millisecond):
		}
		setStatus(t, cs, pod.Name, running("n1"))
		if err := recvErr(t, errc); err != nil {
			t.Fatalf("StartStep = %v once the container was configured", err)
		}
	})
	t.Run("lasts", func(t *testing.T) {
		k, cs := newFake(t, Config{ConfigTimeout: 200 * time.Millisecond})
		step := testStep(0)
		errc := startAsync(k, testRun, step, io.Discard)
		awaitPod(t, cs, podName("r1", 0))
		setStatus(t, cs, podName("r1", 0), waiting("n1", reasonCreateConfigError, msg))
		err := recvErr(t, errc)
		var se *sandbox.StepError
		if !errorsAs(err, &se) || !strings.Contains(err.Error(), "could not be configured within 200ms: "+msg) {
			t.Fatalf("StartStep = %v, want a StepError with the kubelet's message", err)
		}
		assertGone(t, cs, testRun, step)
	})
}
