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
	"sigs.k8s.io/yaml"

	"github.com/kod-forge/kod/sandbox"
)

func TestSecretsStayOutOfThePodSpec(t *testing.T) {
	k, cs := newFake(t, Config{})
	k.openLog = func(context.Context, string, *corev1.PodLogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	step := testStep(0)
	step.Env = append(step.Env, "weird name=v", "EMPTY=")
	errc := startAsync(k, testRun, step, io.Discard)
	pod := awaitPod(t, cs, podName("r1", 0))
	setStatus(t, cs, pod.Name, running("n1"))
	if err := recvErr(t, errc); err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), "s3cret") {
		t.Fatalf("a secret value is in the pod spec:\n%s", y)
	}
	secret, err := cs.CoreV1().Secrets("kod").Get(context.Background(), envName("r1", 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Later entries win; each variable references its key.
	got := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		ref := e.ValueFrom.SecretKeyRef
		if e.Value != "" || ref == nil || ref.Name != secret.Name {
			t.Fatalf("env %s is not a reference to the step's secret: %+v", e.Name, e)
		}
		got[e.Name] = string(secret.Data[ref.Key])
	}
	want := map[string]string{"A": "2", "TOKEN": "s3cret", "weird name": "v", "EMPTY": ""}
	for n, v := range want {
		if got[n] != v {
			t.Errorf("env %s = %q, want %q (all: %v)", n, got[n], v, got)
		}
	}
	sc := pod.Spec.Containers[0].SecurityContext
	if *pod.Spec.AutomountServiceAccountToken || *sc.AllowPrivilegeEscalation || *sc.Privileged || len(sc.Capabilities.Drop) != len(DefaultCapDrop()) {
		t.Errorf("pod is not hardened: %+v %+v", pod.Spec, sc)
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("pod uses host namespaces or restarts: %+v", pod.Spec)
	}
	ctx := context.Background()
	if err := k.StopStep(ctx, testRun, step, 0); err != nil {
		t.Fatal(err)
	}
	p, _ := cs.CoreV1().Pods("kod").Get(ctx, pod.Name, metav1.GetOptions{})
	if d := p.Spec.ActiveDeadlineSeconds; d == nil || *d > 2 {
		t.Errorf("StopStep left activeDeadlineSeconds at %v, want the time the pod ran", d)
	}
	if err := k.DestroyStep(ctx, testRun, step); err != nil {
		t.Fatal(err)
	}
	assertGone(t, cs, testRun, step)
}

func TestLaterPodsOfAWorkspaceArePinnedToItsNode(t *testing.T) {
	k, cs := newFake(t, Config{NodeSelector: map[string]string{"pool": "ci"}})
	k.openLog = func(context.Context, string, *corev1.PodLogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	first := startAsync(k, testRun, testStep(0), io.Discard)
	p0 := awaitPod(t, cs, podName("r1", 0))
	// A second step waits until the first pod is placed.
	second := startAsync(k, testRun, testStep(1), io.Discard)
	time.Sleep(50 * time.Millisecond)
	if _, err := cs.CoreV1().Pods("kod").Get(context.Background(), podName("r1", 1), metav1.GetOptions{}); err == nil {
		t.Fatal("the second pod was created before the workspace had a node")
	}
	if p0.Spec.Affinity != nil || p0.Spec.NodeSelector["pool"] != "ci" {
		t.Fatalf("first pod: affinity %+v, node selector %v", p0.Spec.Affinity, p0.Spec.NodeSelector)
	}
	setStatus(t, cs, p0.Name, running("node-b"))
	if err := recvErr(t, first); err != nil {
		t.Fatal(err)
	}
	p1 := awaitPod(t, cs, podName("r1", 1))
	terms := p1.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || terms[0].MatchFields[0].Key != "metadata.name" || terms[0].MatchFields[0].Values[0] != "node-b" {
		t.Fatalf("second pod's affinity = %+v, want metadata.name in [node-b]", terms)
	}
	setStatus(t, cs, p1.Name, running("node-b"))
	if err := recvErr(t, second); err != nil {
		t.Fatal(err)
	}
	// Another run goes wherever the scheduler puts it.
	other := &sandbox.RunSpec{ID: "r2", Instance: "inst1"}
	third := startAsync(k, other, testStep(0), io.Discard)
	p2 := awaitPod(t, cs, podName("r2", 0))
	if p2.Spec.Affinity != nil {
		t.Errorf("a pod of another run is pinned: %+v", p2.Spec.Affinity)
	}
	setStatus(t, cs, p2.Name, running("node-a"))
	if err := recvErr(t, third); err != nil {
		t.Fatal(err)
	}
}

func TestLabelsAreValidAndRawNamesKept(t *testing.T) {
	run := &sandbox.RunSpec{ID: "r1", Instance: "inst", Labels: map[string]string{
		"dev.kod.repo": "Ünïcode repo/with slashes and a very long name that goes on and on and on and on",
		"dev.kod.ok":   "fine",
	}}
	m := stepMeta("kod-r1-0", run, &sandbox.StepSpec{Index: 0, Name: "build & test"}, "step")
	for k, v := range m.Labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q: %v", k, v, errs)
		}
	}
	if m.Labels["dev.kod.ok"] != "fine" || m.Annotations[annotRawPrefix+"dev.kod.ok"] != "" {
		t.Errorf("a valid value was changed: %v %v", m.Labels, m.Annotations)
	}
	if m.Annotations[annotRawPrefix+"dev.kod.repo"] != run.Labels["dev.kod.repo"] {
		t.Errorf("raw repository name not kept: %v", m.Annotations)
	}
	if m.Annotations[annotStepName] != "build & test" {
		t.Errorf("step name annotation = %q", m.Annotations[annotStepName])
	}
	if labelValue("a/b") == labelValue("a b") {
		t.Error("different raw values collide")
	}
}

func TestSweepAndDestroyRunRemoveEverything(t *testing.T) {
	k, cs := newFake(t, Config{})
	ctx := context.Background()
	keep := &sandbox.RunSpec{ID: "keep", Instance: "inst1"}
	gone := &sandbox.RunSpec{ID: "gone", Instance: "inst1", Network: sandbox.NetworkNone}
	foreign := &sandbox.RunSpec{ID: "gone", Instance: "inst2"}
	for _, r := range []*sandbox.RunSpec{keep, gone} {
		if err := k.SetupRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := k.ensureNoNetworkPolicy(ctx, r); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			pod := &corev1.Pod{ObjectMeta: stepMeta(podName(r.ID, i), r, testStep(i), "step")}
			if _, err := cs.CoreV1().Pods("kod").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			sec := &corev1.Secret{ObjectMeta: stepMeta(envName(r.ID, i), r, testStep(i), "step")}
			if _, err := cs.CoreV1().Secrets("kod").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An object of another instance with the same run id is not ours.
	fp := &corev1.Pod{ObjectMeta: objectMeta("other-pod", foreign, nil)}
	if _, err := cs.CoreV1().Pods("kod").Create(ctx, fp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ids, err := k.Sweep(ctx, "inst1", func(id string) bool { return id == "keep" })
	if err != nil || len(ids) != 1 || ids[0] != "gone" {
		t.Fatalf("Sweep = %v, %v; want [gone]", ids, err)
	}
	count := func(run string) int {
		sel := metav1.ListOptions{LabelSelector: sandbox.LabelRun + "=" + run}
		n := 0
		pods, _ := cs.CoreV1().Pods("kod").List(ctx, sel)
		secrets, _ := cs.CoreV1().Secrets("kod").List(ctx, sel)
		claims, _ := cs.CoreV1().PersistentVolumeClaims("kod").List(ctx, sel)
		pols, _ := cs.NetworkingV1().NetworkPolicies("kod").List(ctx, sel)
		n += len(pods.Items) + len(secrets.Items) + len(claims.Items) + len(pols.Items)
		return n
	}
	if n := count("gone"); n != 1 { // the foreign pod
		t.Errorf("%d objects of run gone left, want only the other instance's pod", n)
	}
	if n := count("keep"); n != 7 {
		t.Errorf("%d objects of the kept run, want 7", n)
	}
	for range 2 { // idempotent
		if err := k.DestroyRun(ctx, keep); err != nil {
			t.Fatal(err)
		}
	}
	if n := count("keep"); n != 0 {
		t.Errorf("%d objects of run keep left after DestroyRun", n)
	}
}
