package kubernetes

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kod-forge/kod/sandbox"
)

// waitFor is how long a test waits for an event before calling it a hang.
const waitFor = 30 * time.Second

// newFake returns a backend on client-go's fake clientset with fast ticks.
func newFake(t *testing.T, cfg Config) (*Kubernetes, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	k, err := NewForClient(cs, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.tick = 10 * time.Millisecond
	t.Cleanup(func() { k.Close() })
	return k, cs
}

var testRun = &sandbox.RunSpec{ID: "r1", Instance: "inst1"}

func testStep(i int) *sandbox.StepSpec {
	return &sandbox.StepSpec{Index: i, Name: "step " + string(rune('a'+i)), Image: "kod/busybox:local",
		Command: []string{"sh", "-c", "true"}, Env: []string{"A=1", "TOKEN=s3cret", "A=2"}}
}

// awaitPod waits until the pod exists and returns it.
func awaitPod(t *testing.T, cs *fake.Clientset, name string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods("kod").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			return p
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pod %s was not created", name)
	return nil
}

// setStatus stores pod with the status mutate gives it, as a kubelet would.
func setStatus(t *testing.T, cs *fake.Clientset, name string, mutate func(p *corev1.Pod)) {
	t.Helper()
	p, err := cs.CoreV1().Pods("kod").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mutate(p)
	if _, err := cs.CoreV1().Pods("kod").UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func scheduled(node string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = node
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	}
}

func waiting(node, reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		scheduled(node)(p)
		p.Status.Phase = corev1.PodPending
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: stepContainer,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
	}
}

func running(node string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		scheduled(node)(p)
		p.Status.Phase = corev1.PodRunning
		now := metav1.Now()
		p.Status.StartTime = &now
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: stepContainer,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
	}
}

func terminated(node string, code int32, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		scheduled(node)(p)
		p.Status.Phase = corev1.PodFailed
		if code == 0 {
			p.Status.Phase = corev1.PodSucceeded
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: stepContainer,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}}}
	}
}

// startAsync runs StartStep in the background.
func startAsync(k *Kubernetes, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- k.StartStep(context.Background(), run, step, out) }()
	return ch
}

func recvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitFor):
		t.Fatal("StartStep did not return")
		return nil
	}
}

// assertGone fails unless the step's pod and Secret were deleted.
func assertGone(t *testing.T, cs *fake.Clientset, run *sandbox.RunSpec, step *sandbox.StepSpec) {
	t.Helper()
	if _, err := cs.CoreV1().Pods("kod").Get(context.Background(), podName(run.ID, step.Index), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod of step %d still exists (err %v)", step.Index, err)
	}
	if _, err := cs.CoreV1().Secrets("kod").Get(context.Background(), envName(run.ID, step.Index), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret of step %d still exists (err %v)", step.Index, err)
	}
}

func TestImagePullErrorsFailTheStep(t *testing.T) {
	for _, tc := range []struct {
		name, reason, want string
		pullTimeout        time.Duration
	}{
		{"back-off after the pull timeout", reasonImagePullBackOff, "could not be pulled within 200ms: ImagePullBackOff: Back-off pulling", 200 * time.Millisecond},
		{"never pull at once", reasonErrImageNeverPull, "is not present on node n1 (pull policy never)", time.Hour},
		{"invalid name at once", reasonInvalidImageName, "invalid image name", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, cs := newFake(t, Config{PullTimeout: tc.pullTimeout})
			step := testStep(0)
			started := time.Now()
			errc := startAsync(k, testRun, step, io.Discard)
			awaitPod(t, cs, podName("r1", 0))
			setStatus(t, cs, podName("r1", 0), waiting("n1", tc.reason, "Back-off pulling image"))
			err := recvErr(t, errc)
			var se *sandbox.StepError
			if !errorsAs(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("StartStep = %v, want a StepError containing %q", err, tc.want)
			}
			if tc.pullTimeout < time.Hour && time.Since(started) < tc.pullTimeout {
				t.Errorf("failed after %s, before the pull timeout", time.Since(started))
			}
			assertGone(t, cs, testRun, step)
		})
	}
}

func TestUnschedulableFailsWithTheSchedulersReason(t *testing.T) {
	k, cs := newFake(t, Config{ScheduleTimeout: 200 * time.Millisecond})
	step := testStep(0)
	errc := startAsync(k, testRun, step, io.Discard)
	awaitPod(t, cs, podName("r1", 0))
	setStatus(t, cs, podName("r1", 0), func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/2 nodes are available: 2 Insufficient memory."}}
	})
	err := recvErr(t, errc)
	var se *sandbox.StepError
	if !errorsAs(err, &se) || !strings.Contains(err.Error(), "0/2 nodes are available: 2 Insufficient memory.") {
		t.Fatalf("StartStep = %v, want a StepError with the scheduler's message", err)
	}
	assertGone(t, cs, testRun, step)
}

func TestNodeLostFailsTheRunningStep(t *testing.T) {
	k, cs := newFake(t, Config{NodeLostTimeout: 200 * time.Millisecond})
	// The lost node's kubelet never answers: the log stream hangs.
	k.openLog = func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte("2026-01-02T03:04:05.1Z before the loss\n"))
			<-ctx.Done()
			pw.CloseWithError(ctx.Err())
		}()
		return pr, nil
	}
	step := testStep(0)
	errc := startAsync(k, testRun, step, io.Discard)
	awaitPod(t, cs, podName("r1", 0))
	setStatus(t, cs, podName("r1", 0), running("n2"))
	if err := recvErr(t, errc); err != nil {
		t.Fatal(err)
	}
	// The node controller marks the pods of an unreachable node not ready;
	// the container status still says running.
	setStatus(t, cs, podName("r1", 0), func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "NodeNotReady"}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := k.WaitStep(ctx, testRun, step)
	if err == nil || !strings.Contains(err.Error(), "node n2 lost") || !strings.Contains(err.Error(), "NodeNotReady") {
		t.Fatalf("WaitStep = %v, want node n2 lost", err)
	}
	if err := k.DestroyStep(ctx, testRun, step); err != nil {
		t.Fatal(err)
	}
	assertGone(t, cs, testRun, step)
}

func TestExitStateAndOOM(t *testing.T) {
	k, cs := newFake(t, Config{})
	k.openLog = func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("2026-01-02T03:04:05.1Z out\n")), nil
	}
	step := testStep(0)
	errc := startAsync(k, testRun, step, io.Discard)
	awaitPod(t, cs, podName("r1", 0))
	setStatus(t, cs, podName("r1", 0), terminated("n1", 137, "OOMKilled"))
	if err := recvErr(t, errc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	exit, err := k.WaitStep(ctx, testRun, step)
	if err != nil || exit != (sandbox.ExitState{ExitCode: 137, OOMKilled: true}) {
		t.Fatalf("WaitStep = %+v, %v; want 137 OOM-killed", exit, err)
	}
}

// logLine is one entry of a container's CRI log.
type logLine struct {
	ts      time.Time
	text    string
	partial bool // a part of a longer line: no newline after it
}

// kubeletLog renders lines as the kubelet's log endpoint does with
// timestamps=true: a line's first part carries its time, later parts none;
// entries before since are left out but still decide whether the next one
// starts a line.
func kubeletLog(lines []logLine, since time.Time) []byte {
	var b bytes.Buffer
	newLine := true
	for _, l := range lines {
		if !l.ts.Before(since) {
			if newLine {
				b.WriteString(l.ts.Format(time.RFC3339Nano) + " ")
			}
			b.WriteString(l.text)
			if !l.partial {
				b.WriteByte('\n')
			}
		}
		newLine = !l.partial
	}
	return b.Bytes()
}

func plain(lines []logLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text)
		if !l.partial {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// breakingLog serves lines like the kubelet, cutting each stream after
// cut(n) bytes for the n-th request, until lines are served in full.
type breakingLog struct {
	mu       sync.Mutex
	lines    []logLine
	cut      func(n int) int // bytes of the n-th stream; < 0: all
	requests int
	sinces   []time.Time
}

func (b *breakingLog) open(_ context.Context, _ string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var since time.Time
	if opts.SinceTime != nil {
		since = opts.SinceTime.Time
		// The API transmits whole seconds.
		if since != since.Truncate(time.Second) {
			panic("sinceTime with a fraction of a second")
		}
	}
	b.sinces = append(b.sinces, since)
	data := kubeletLog(b.lines, since)
	if n := b.cut(b.requests); n >= 0 && n < len(data) {
		data = data[:n]
	}
	b.requests++
	return io.NopCloser(bytes.NewReader(data)), nil
}

func TestLogResumesWithoutLossOrDuplicates(t *testing.T) {
	base := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	long := strings.Repeat("x", 40<<10) // longer than the reader's buffer
	lines := []logLine{
		{at(0), "first", false},
		{at(100), "same time a", false},
		{at(100), "same time b", false},
		{at(100), "same time c", false},
		{at(900), "split across ", true},
		{at(1200), "a second boundary", false},
		{at(1300), long, false},
		{at(2000), "2026-12-07T20:00:00Z looks like a timestamp", false},
		{at(2500), "part one ", true},
		{at(2500), "part two ", true},
		{at(2600), "end", false},
		{at(3100), "no newline at the end", true},
	}
	full := kubeletLog(lines, time.Time{})
	want := plain(lines)
	// Break every stream at each offset in turn, including inside
	// timestamps and inside the long line.
	for cutAt := 1; cutAt < len(full); cutAt += 7 + cutAt/3 {
		src := &breakingLog{lines: lines, cut: func(n int) int {
			if n == 0 {
				return cutAt
			}
			if n < 4 {
				return cutAt / (n + 1) // later streams break too, earlier
			}
			return -1
		}}
		var out bytes.Buffer
		c := &logCursor{out: &out, lineStart: true}
		for i := 0; ; i++ {
			if i > 20 {
				t.Fatalf("cut at %d: no progress", cutAt)
			}
			opts := &corev1.PodLogOptions{Timestamps: true}
			if c.anchored {
				opts.SinceTime = &metav1.Time{Time: c.anchorTS.Truncate(time.Second)}
			}
			rc, _ := src.open(context.Background(), "p", opts)
			err := c.session(c.anchored).consume(rc)
			src.mu.Lock()
			done := src.requests > 4
			src.mu.Unlock()
			if done && err == nil {
				break
			}
		}
		if got := out.String(); got != want {
			t.Fatalf("cut at %d: got %d bytes, want %d; first difference at %d", cutAt, len(got), len(want), firstDiff(got, want))
		}
	}
}

func TestFollowLogReconnectsUntilTheStepEnds(t *testing.T) {
	k, _ := newFake(t, Config{})
	base := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	var lines []logLine
	for i := range 50 {
		lines = append(lines, logLine{ts: base.Add(time.Duration(i*97) * time.Millisecond), text: strings.Repeat("l", i) + "!"})
	}
	src := &breakingLog{lines: lines, cut: func(n int) int {
		if n < 3 {
			return 300 * (n + 1)
		}
		return -1
	}}
	k.openLog = src.open
	ended := make(chan struct{})
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- k.followLog(context.Background(), "p", &out, ended) }()
	// The step ends while the streams are breaking.
	time.Sleep(50 * time.Millisecond)
	close(ended)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("followLog did not return")
	}
	if out.String() != plain(lines) {
		t.Fatalf("output differs at byte %d", firstDiff(out.String(), plain(lines)))
	}
	if len(src.sinces) < 2 || !src.sinces[0].IsZero() || src.sinces[1].IsZero() {
		t.Errorf("streams asked since %v; want the first from the start, later ones from their anchor", src.sinces)
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
