// Package kube tests kod end to end on a real Kubernetes cluster: the
// built binary as `kod serve` with KOD_BACKEND=kubernetes, pushes with the
// real git client, and client-go (admin credentials) to look at what the
// server created. The cluster comes from scripts/kube-cluster (`eval
// "$(scripts/kube-cluster env)"`); without KOD_KUBECONFIG the tests skip,
// unless CI=true or KOD_REQUIRE_KUBE=1, where they fail.
package kube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox"
)

var kodBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kod-kube-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kodBin = filepath.Join(dir, "kod")
	build := exec.Command("go", "build", "-o", kodBin, "../../cmd/kod")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building kod:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	adminToken = "kod_kubeE2eAdminToken0123456789abcd"
	encKey     = "a passphrase for the kube tests"
	namespace  = "kod"
	// hang catches hangs only; a loaded machine must never reach it.
	hang = 3 * time.Minute
)

// cluster returns the admin client of the test cluster, or skips/fails
// when there is none.
func cluster(t testing.TB) kubernetes.Interface {
	t.Helper()
	kc, admin := os.Getenv("KOD_KUBECONFIG"), os.Getenv("KOD_KUBE_ADMIN_KUBECONFIG")
	if kc == "" || admin == "" {
		msg := "no cluster: run `scripts/kube-cluster up` and eval \"$(scripts/kube-cluster env)\""
		if os.Getenv("CI") == "true" || os.Getenv("KOD_REQUIRE_KUBE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err != nil {
		t.Fatalf("cluster unusable: %v", err)
	}
	return cs
}

// server is a running `kod serve` on the cluster.
type server struct {
	t        testing.TB
	cs       kubernetes.Interface
	URL      string
	Instance string
	Home     string
	env      []string
	cmd      *exec.Cmd
	logMu    sync.Mutex
	log      bytes.Buffer
	exited   chan struct{}
	stopped  bool
}

var listenRE = regexp.MustCompile(`msg="kod is listening" http=(\S+) instance=(\S+)`)

// startServer starts kod serve with KOD_BACKEND=kubernetes and small step
// limits (so several runs fit the nodes at once). At the end of the test it
// stops the server and checks that nothing of its instance is left.
func startServer(t testing.TB, env ...string) *server {
	t.Helper()
	s := &server{t: t, cs: cluster(t), Home: t.TempDir(), env: env}
	s.start()
	t.Cleanup(func() {
		s.Stop()
		s.assertNothingLeft()
	})
	return s
}

func (s *server) start() {
	t := s.t
	cmd := exec.Command(kodBin, "serve", "--port", "0", "--host", "127.0.0.1", "--no-ssh")
	cmd.Env = append(os.Environ(),
		"KOD_HOME="+s.Home, "KOD_DATA_DIR="+filepath.Join(s.Home, "data"), "KOD_REPOS_DIR="+filepath.Join(s.Home, "repos"),
		"KOD_ADMIN_TOKEN="+adminToken, "KOD_ENCRYPTION_KEY="+encKey, "KOD_CONFIG=",
		"KOD_BACKEND=kubernetes", "KOD_KUBE_NAMESPACE="+namespace,
		"KOD_STEP_CPUS=0.1", "KOD_STEP_MEMORY=64m", "KOD_STOP_GRACE=2s", "KOD_MAX_CONCURRENT_RUNS=4",
	)
	cmd.Env = append(cmd.Env, s.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.exited, s.stopped = cmd, make(chan struct{}), false
	addr := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.logMu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1:]
			}
		}
	}()
	go func() { cmd.Wait(); close(s.exited) }()
	select {
	case a := <-addr:
		s.URL, s.Instance = "http://"+a[0], a[1]
	case <-s.exited:
		t.Fatalf("kod serve exited at start:\n%s", s.Logs())
	case <-time.After(hang):
		t.Fatalf("kod serve did not start:\n%s", s.Logs())
	}
}

func (s *server) Logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

func (s *server) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(hang):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("kod serve did not stop")
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.Logs())
	}
}

// Kill ends the server with SIGKILL: no cleanup at all.
func (s *server) Kill() {
	s.stopped = true
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *server) do(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func (s *server) mustDo(method, path string, body any, want int, out any) {
	s.t.Helper()
	status, data := s.do(method, path, body)
	if status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (s *server) gitURL(repo string) string {
	return strings.Replace(s.URL, "http://", "http://git:"+adminToken+"@", 1) + "/repos/" + repo + ".git"
}

// push creates repo (if new) and pushes a commit with the workflow to branch.
func (s *server) push(repo, branch, workflow string) {
	s.t.Helper()
	s.pushFiles(repo, branch, map[string]string{"ci.toml": workflow})
}

// pushFiles is push with several workflow files, by name under
// .kod/workflows.
func (s *server) pushFiles(repo, branch string, workflows map[string]string) {
	s.t.Helper()
	if status, data := s.do("POST", "/repos", map[string]string{"name": repo}); status != http.StatusCreated && status != http.StatusConflict {
		s.t.Fatalf("create repo: %d %s", status, data)
	}
	dir := s.t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@kod.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@kod.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			s.t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", branch)
	if err := os.MkdirAll(filepath.Join(dir, ".kod/workflows"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	for name, workflow := range workflows {
		if err := os.WriteFile(filepath.Join(dir, ".kod/workflows", name), []byte(workflow), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte(branch+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "ci")
	git("push", "-q", "-f", s.gitURL(repo), branch)
}

func (s *server) runs(repo string) []forge.Run {
	var runs []forge.Run
	s.mustDo("GET", "/repos/"+repo+"/workflows", nil, http.StatusOK, &runs)
	return runs
}

// onlyRun waits for repo to have exactly one run.
func (s *server) onlyRun(repo string) forge.Run {
	s.t.Helper()
	deadline := time.Now().Add(hang)
	for {
		if runs := s.runs(repo); len(runs) == 1 {
			return runs[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: no single run", repo)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) run(repo, id string) forge.Run {
	var run forge.Run
	s.mustDo("GET", "/repos/"+repo+"/workflows/"+id, nil, http.StatusOK, &run)
	return run
}

// waitRun waits until the run is done.
func (s *server) waitRun(repo, id string) forge.Run {
	s.t.Helper()
	deadline := time.Now().Add(hang)
	for {
		run := s.run(repo, id)
		if run.Status.Done() {
			return run
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s still %s:\n%s", id, run.Status, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) logs(repo, id string) string {
	_, data := s.do("GET", "/repos/"+repo+"/workflows/"+id+"/logs", nil)
	return string(data)
}

// waitLog waits until the run's log contains want.
func (s *server) waitLog(repo, id, want string) {
	s.t.Helper()
	deadline := time.Now().Add(hang)
	for !strings.Contains(s.logs(repo, id), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("log of %s never showed %q:\n%s", id, want, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// selector selects the objects of this server's instance.
func (s *server) selector() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: sandbox.LabelManaged + "=true," + sandbox.LabelInstance + "=" + s.Instance}
}

// objects lists what exists of this instance, by kind.
func (s *server) objects() map[string][]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string][]string{}
	sel := s.selector()
	if l, err := s.cs.CoreV1().Pods(namespace).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			out["pod"] = append(out["pod"], o.Name)
		}
	} else {
		s.t.Fatal(err)
	}
	if l, err := s.cs.CoreV1().Secrets(namespace).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			out["secret"] = append(out["secret"], o.Name)
		}
	} else {
		s.t.Fatal(err)
	}
	if l, err := s.cs.CoreV1().PersistentVolumeClaims(namespace).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			out["claim"] = append(out["claim"], o.Name)
		}
	} else {
		s.t.Fatal(err)
	}
	if l, err := s.cs.NetworkingV1().NetworkPolicies(namespace).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			out["networkpolicy"] = append(out["networkpolicy"], o.Name)
		}
	} else {
		s.t.Fatal(err)
	}
	return out
}

// waitNoPods waits until no pod of the instance exists.
func (s *server) waitNoPods(why string) {
	s.t.Helper()
	deadline := time.Now().Add(hang)
	for len(s.objects()["pod"]) > 0 {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: pods left: %v", why, s.objects()["pod"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertNothingLeft waits (deletions finish asynchronously: claims wait
// for their pods) until no object of the instance exists.
func (s *server) assertNothingLeft() {
	s.t.Helper()
	deadline := time.Now().Add(hang)
	for {
		left := s.objects()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Errorf("objects left by instance %s: %v", s.Instance, left)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// podWatch records the node of every pod of the instance while it runs.
type podWatch struct {
	mu    sync.Mutex
	nodes map[string]string // pod name -> node
	runs  map[string]string // pod name -> run id
	specs []corev1.Pod
	stop  context.CancelFunc
	done  chan struct{}

	// workspace and claim of each pod: its sandbox.LabelWorkspace label
	// and the workspace claim it mounts ("" for none).
	workspaces map[string]string
	claims     map[string]string
}

func (s *server) watchPods() *podWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &podWatch{nodes: map[string]string{}, runs: map[string]string{}, workspaces: map[string]string{}, claims: map[string]string{},
		stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			l, err := s.cs.CoreV1().Pods(namespace).List(ctx, s.selector())
			if err == nil {
				w.mu.Lock()
				for _, p := range l.Items {
					if _, seen := w.runs[p.Name]; !seen {
						w.specs = append(w.specs, p)
					}
					w.runs[p.Name] = p.Labels[sandbox.LabelRun]
					w.workspaces[p.Name] = p.Labels[sandbox.LabelWorkspace]
					for _, v := range p.Spec.Volumes {
						if v.PersistentVolumeClaim != nil {
							w.claims[p.Name] = v.PersistentVolumeClaim.ClaimName
						}
					}
					if p.Spec.NodeName != "" {
						w.nodes[p.Name] = p.Spec.NodeName
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// end stops watching and returns the nodes of each run's pods.
func (w *podWatch) end() map[string]map[string]bool {
	w.stop()
	<-w.done
	byRun := map[string]map[string]bool{}
	for pod, run := range w.runs {
		if byRun[run] == nil {
			byRun[run] = map[string]bool{}
		}
		if n := w.nodes[pod]; n != "" {
			byRun[run][n] = true
		}
	}
	return byRun
}
