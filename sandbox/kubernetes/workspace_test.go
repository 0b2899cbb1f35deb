package kubernetes

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kod-forge/kod/sandbox"
)

func TestWorkspaceNamesFitAndDiffer(t *testing.T) {
	id := strings.Repeat("r", 40)
	long1 := strings.Repeat("w", 39) + "1"
	long2 := strings.Repeat("w", 39) + "2"
	seen := map[string]string{}
	for _, ws := range []string{"", "a", "build-linux", long1, long2} {
		run := &sandbox.RunSpec{ID: id, Workspace: ws}
		for _, name := range []string{claimName(run), loaderName(run), policyName(run), policyName(run) + "-none"} {
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				t.Errorf("workspace %q: name %q: %v", ws, name, errs)
			}
			if other, ok := seen[name]; ok {
				t.Errorf("name %q of workspace %q also of workspace %q", name, ws, other)
			}
			seen[name] = ws
		}
	}
	if got := claimName(&sandbox.RunSpec{ID: "r1", Workspace: "test"}); got != "kod-r1-test-ws" {
		t.Errorf("claim name = %q, want kod-r1-test-ws", got)
	}
	if got := claimName(&sandbox.RunSpec{ID: "r1"}); got != "kod-r1-ws" {
		t.Errorf("claim name without workspace = %q, want kod-r1-ws", got)
	}
}

// DestroyRun of one workspace leaves the run's other workspaces; Sweep
// removes them all by the run.
func TestDestroyRunRemovesOnlyItsWorkspace(t *testing.T) {
	k, cs := newFake(t, Config{})
	ctx := context.Background()
	a := &sandbox.RunSpec{ID: "r1", Instance: "inst1", Workspace: "a"}
	b := &sandbox.RunSpec{ID: "r1", Instance: "inst1", Workspace: "b"}
	plain := &sandbox.RunSpec{ID: "r1", Instance: "inst1"}
	for i, r := range []*sandbox.RunSpec{a, b, plain} {
		if err := k.SetupRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: stepMeta(podName(r.ID, i), r, testStep(i), "step")}
		if _, err := cs.CoreV1().Pods("kod").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := cs.CoreV1().Pods("kod").Get(ctx, podName("r1", 1), metav1.GetOptions{})
	if err != nil || p.Labels[sandbox.LabelWorkspace] != "b" {
		t.Fatalf("pod of b: labels %v, %v", p.Labels, err)
	}
	pol, err := cs.NetworkingV1().NetworkPolicies("kod").Get(ctx, policyName(a), metav1.GetOptions{})
	if err != nil || pol.Spec.PodSelector.MatchLabels[sandbox.LabelWorkspace] != "a" {
		t.Fatalf("policy of a selects %v (%v), want the pods of workspace a", pol.Spec.PodSelector, err)
	}
	names := func() []string {
		var out []string
		pods, _ := cs.CoreV1().Pods("kod").List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			out = append(out, p.Name)
		}
		claims, _ := cs.CoreV1().PersistentVolumeClaims("kod").List(ctx, metav1.ListOptions{})
		for _, c := range claims.Items {
			out = append(out, c.Name)
		}
		return out
	}
	if err := k.DestroyRun(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(), " "), "kod-r1-1 kod-r1-2 kod-r1-b-ws kod-r1-ws"; got != want {
		t.Errorf("after DestroyRun of a: %s, want %s", got, want)
	}
	if err := k.DestroyRun(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(), " "), "kod-r1-1 kod-r1-b-ws"; got != want {
		t.Errorf("after DestroyRun of workspace \"\": %s, want %s", got, want)
	}
	ids, err := k.Sweep(ctx, "inst1", func(string) bool { return false })
	if err != nil || len(ids) != 1 || len(names()) != 0 {
		t.Errorf("Sweep = %v, %v; left %v", ids, err, names())
	}
}

// A running step's stdin is closed at once by an attach with nothing to
// send; the step's environment carries the workspace's safe.directory.
func TestStepStdinClosedByAttach(t *testing.T) {
	k, cs := newFake(t, Config{})
	k.openLog = func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	attached := make(chan string, 1)
	k.attach = func(_ context.Context, pod, container string, stdin io.Reader) error {
		b, _ := io.ReadAll(stdin)
		attached <- pod + "/" + container + ":" + string(b)
		return nil
	}
	step := testStep(0)
	errc := startAsync(k, testRun, step, io.Discard)
	pod := awaitPod(t, cs, podName("r1", 0))
	if c := pod.Spec.Containers[0]; !c.Stdin || !c.StdinOnce {
		t.Errorf("step container stdin %v, once %v; want both", c.Stdin, c.StdinOnce)
	}
	sec, err := cs.CoreV1().Secrets("kod").Get(context.Background(), envName("r1", 0), metav1.GetOptions{})
	if err != nil || string(sec.Data["GIT_CONFIG_VALUE_0"]) != sandbox.WorkspacePath {
		t.Errorf("step environment %v (%v), want safe.directory for the workspace", sec.Data, err)
	}
	setStatus(t, cs, podName("r1", 0), running("n1"))
	if err := recvErr(t, errc); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-attached:
		if got != "kod-r1-0/step:" {
			t.Errorf("attached %q, want kod-r1-0/step with empty stdin", got)
		}
	case <-time.After(waitFor):
		t.Fatal("no attach closed the step's stdin")
	}
}
