package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox"
)

const fiveTrue = `
[[steps]]
name = "s1"
run = "true"
[[steps]]
name = "s2"
run = "true"
[[steps]]
name = "s3"
run = "true"
[[steps]]
name = "s4"
run = "true"
[[steps]]
name = "s5"
run = "true"
`

// BenchmarkKubeFiveSteps runs, in each iteration and in the same process,
// a 5-step workflow of `true` through kod serve (push to finished run) and
// the baseline: a plain client-go loop that creates 5 pods of the same
// image one after another, waits for each to succeed and deletes it. It
// reports both (ms) and their ratio.
//
//	go test -run X -bench KubeFiveSteps -benchtime 5x ./e2e/kube
func BenchmarkKubeFiveSteps(b *testing.B) {
	s := startServer(b)
	var kodTotal, plainTotal, runTotal time.Duration
	for i := range b.N {
		start := time.Now()
		branch := fmt.Sprintf("bench%d", i)
		s.push("bench", branch, fiveTrue)
		run := s.waitBranchRun("bench", branch)
		done := s.waitRun("bench", run.ID)
		kodTotal += time.Since(start)
		if done.Status != forge.RunCompleted {
			b.Fatalf("run %s: %s", run.ID, done.Status)
		}
		runTotal += time.Duration(done.Result.Duration) * time.Millisecond

		start = time.Now()
		plainPods(b, s.cs, i)
		plainTotal += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(kodTotal.Milliseconds())/n, "kod-push-to-done-ms")
	b.ReportMetric(float64(runTotal.Milliseconds())/n, "kod-run-ms")
	b.ReportMetric(float64(plainTotal.Milliseconds())/n, "plain-5-pods-ms")
	b.ReportMetric(float64(kodTotal)/float64(plainTotal), "ratio")
}

// plainPods is the baseline: 5 pods created, awaited and deleted in turn.
func plainPods(b *testing.B, cs kubernetes.Interface, iter int) {
	ctx := context.Background()
	pods := cs.CoreV1().Pods(namespace)
	for j := range 5 {
		no := false
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("kod-bench-plain-%d-%d", iter, j)},
			Spec: corev1.PodSpec{
				RestartPolicy:                corev1.RestartPolicyNever,
				AutomountServiceAccountToken: &no,
				Containers: []corev1.Container{{Name: "c", Image: "kod/busybox:local",
					ImagePullPolicy: corev1.PullNever, Command: []string{"true"}}},
			},
		}
		created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", pod.Name).String(), ResourceVersion: created.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		deadline := time.After(hang)
	wait:
		for {
			select {
			case ev := <-w.ResultChan():
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted && p.Status.Phase == corev1.PodSucceeded {
					break wait
				}
			case <-deadline:
				b.Fatalf("pod %s did not succeed", pod.Name)
			}
		}
		w.Stop()
		if err := pods.Delete(ctx, pod.Name, *metav1.NewDeleteOptions(0)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKubePushToFirstStep measures the time from `git push` to the
// first step's container running on the cluster.
//
//	go test -run X -bench KubePushToFirstStep -benchtime 5x ./e2e/kube
func BenchmarkKubePushToFirstStep(b *testing.B) {
	s := startServer(b)
	var total time.Duration
	for i := range b.N {
		branch := fmt.Sprintf("first%d", i)
		start := time.Now()
		s.push("first", branch, "[[steps]]\nname = \"s\"\nrun = \"sleep 1\"\n")
		total += s.waitFirstStepRunning(start)
		run := s.waitBranchRun("first", branch)
		s.waitRun("first", run.ID)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "push-to-running-ms")
}

// waitBranchRun waits for the run of branch in repo.
func (s *server) waitBranchRun(repo, branch string) forge.Run {
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		for _, r := range s.runs(repo) {
			if r.Branch == branch {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("no run of branch %s", branch)
	return forge.Run{}
}

// waitFirstStepRunning returns how long after start a step-0 pod of the
// instance had its container running.
func (s *server) waitFirstStepRunning(start time.Time) time.Duration {
	sel := s.selector()
	sel.LabelSelector += "," + sandbox.LabelStep + "=0"
	deadline := time.Now().Add(hang)
	for time.Now().Before(deadline) {
		l, err := s.cs.CoreV1().Pods(namespace).List(context.Background(), sel)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, p := range l.Items {
			if !strings.HasSuffix(p.Name, "-0") || p.CreationTimestamp.Time.Before(start.Add(-time.Second)) {
				continue
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Running != nil || c.State.Terminated != nil {
					return time.Since(start)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatal("the first step never ran")
	return 0
}
